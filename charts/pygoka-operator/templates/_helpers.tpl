{{- /* name is the chart's name, or nameOverride. */ -}}
{{- define "pygoka-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- /* fullname names the release's objects: fullnameOverride, or <release>-<name> (the release alone when it
already contains the name). */ -}}
{{- define "pygoka-operator.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := include "pygoka-operator.name" . -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "pygoka-operator.labels" -}}
app.kubernetes.io/name: {{ include "pygoka-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "pygoka-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "pygoka-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- /* pullSecretNames are imagePullSecrets' names, comma-separated: the operator gives them to the pods it makes. */ -}}
{{- define "pygoka-operator.pullSecretNames" -}}
{{- $names := list -}}
{{- range .Values.imagePullSecrets -}}
{{- $names = append $names .name -}}
{{- end -}}
{{- join "," $names -}}
{{- end -}}

{{- define "pygoka-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "pygoka-operator.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The permissions on pygoka's resources and their children, shared by the Role and the ClusterRole: exactly
what the operator uses and checks for at startup (operator/pygoka_operator/rbac.py; a unit test keeps them equal).
kopf lists, watches and patches the resources and their status; children are read (an existing object is applied
only if it is ours), created and server-side applied, never deleted (the garbage collector follows owner references); kopf posts core/v1 events. */}}
{{- define "pygoka-operator.rules" -}}
- apiGroups: [pygoka.io]
  resources: [processorgroups, views]
  verbs: [list, watch, patch]
- apiGroups: [pygoka.io]
  resources: [processorgroups/status, views/status]
  verbs: [patch]
- apiGroups: [apps]
  resources: [statefulsets]
  verbs: [get, create, patch]
- apiGroups: [""]
  resources: [services]
  verbs: [get, create, patch]
- apiGroups: [policy]
  resources: [poddisruptionbudgets]
  verbs: [get, create, patch]
{{- /* Each group's pod identity and its Role (get its own StatefulSet, granted as the operator holds that get). */}}
- apiGroups: [""]
  resources: [serviceaccounts]
  verbs: [get, create, patch]
- apiGroups: [rbac.authorization.k8s.io]
  resources: [roles, rolebindings]
  verbs: [get, create, patch]
- apiGroups: [""]
  resources: [secrets]
  verbs: [get]
- apiGroups: [""]
  resources: [events]
  verbs: [create]
{{- if .Values.learnGraph }}
{{- /* The graph Jobs that learn each group's topology from its image, and their pods' status (the result). */}}
- apiGroups: [batch]
  resources: [jobs]
  verbs: [get, create]
- apiGroups: [""]
  resources: [pods]
  verbs: [list]
{{- end }}
{{- if .Values.peering.name }}
{{- /* kopf watches the peering objects and patches its keep-alive into them; it never creates them. */}}
- apiGroups: [kopf.dev]
  resources: [{{ if empty .Values.watchNamespaces }}clusterkopfpeerings{{ else }}kopfpeerings{{ end }}]
  verbs: [list, watch, patch]
{{- end }}
{{- end -}}
