// promcheck checks Prometheus rule files, PromQL expressions and Grafana dashboards with the parsers of
// Prometheus (model/rulefmt, promql/parser) and the dashboard types Grafana's schema generates
// (grafana-foundation-sdk): what `promtool check rules` does, without promtool's service-discovery
// dependencies, and a strict schema check of a dashboard. Built and cached by scripts/promcheck.sh.
//
//	promcheck rules FILE...     parse rule files (YAML groups, as a PrometheusRule's spec holds): exit 1 naming
//	                            each error (file, group, rule, expression)
//	promcheck exprs             parse one PromQL expression per line of stdin
//	promcheck dashboard FILE    decode a dashboard strictly (unknown or mistyped fields are errors), then parse
//	                            every Prometheus query of its panels and variables, Grafana's variables replaced
//	                            by sample values
//	promcheck monitors FILE     decode every PodMonitor, ServiceMonitor and PrometheusRule of a multi-document
//	                            YAML file (e.g. `helm template` output) strictly into the Prometheus Operator's
//	                            API types, parsing the rules' expressions; print "KIND NAME" per object
//
// exprs and dashboard print the metric names the expressions select, one per line (for cross-checks), and
// exit 1 naming each expression that fails.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/plugins"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"sigs.k8s.io/yaml"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: promcheck rules FILE... | promcheck exprs < expressions")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "rules":
		os.Exit(checkRules(os.Args[2:]))
	case "exprs":
		os.Exit(checkExprs())
	case "monitors":
		if len(os.Args) != 3 {
			fmt.Fprintln(os.Stderr, "usage: promcheck monitors FILE")
			os.Exit(2)
		}
		os.Exit(checkMonitors(os.Args[2]))
	case "dashboard":
		if len(os.Args) != 3 {
			fmt.Fprintln(os.Stderr, "usage: promcheck dashboard FILE")
			os.Exit(2)
		}
		os.Exit(checkDashboard(os.Args[2]))
	default:
		fmt.Fprintf(os.Stderr, "promcheck: unknown command %q\n", os.Args[1])
		os.Exit(2)
	}
}

func checkRules(files []string) int {
	failed := 0
	for _, file := range files {
		groups, errs := rulefmt.ParseFile(file, false)
		for _, err := range errs {
			fmt.Fprintf(os.Stderr, "%s: %v\n", file, err)
			failed++
		}
		if groups == nil {
			continue
		}
		count := 0
		for _, group := range groups.Groups {
			count += len(group.Rules)
		}
		fmt.Printf("%s: %d groups, %d rules\n", file, len(groups.Groups), count)
	}
	if failed > 0 {
		return 1
	}
	return 0
}

func checkExprs() int {
	var exprs []string
	scanner := bufio.NewScanner(os.Stdin)
	scanner.Buffer(make([]byte, 1<<20), 1<<20)
	for scanner.Scan() {
		if text := scanner.Text(); text != "" {
			exprs = append(exprs, text)
		}
	}
	return parseAll(exprs)
}

// parseAll parses each expression, prints the metric names they select, and returns the exit code.
func parseAll(exprs []string) int {
	failed := 0
	names := map[string]bool{}
	for i, text := range exprs {
		expr, err := parser.ParseExpr(text)
		if err != nil {
			fmt.Fprintf(os.Stderr, "expression %d: %q: %v\n", i+1, text, err)
			failed++
			continue
		}
		parser.Inspect(expr, func(node parser.Node, _ []parser.Node) error {
			if selector, ok := node.(*parser.VectorSelector); ok && selector.Name != "" {
				names[selector.Name] = true
			}
			return nil
		})
	}
	sorted := make([]string, 0, len(names))
	for name := range names {
		sorted = append(sorted, name)
	}
	sort.Strings(sorted)
	for _, name := range sorted {
		fmt.Println(name)
	}
	if failed > 0 {
		return 1
	}
	return 0
}

// labelValues is Grafana's label_values(METRIC_OR_SELECTOR, LABEL) variable query.
var labelValues = regexp.MustCompile(`^label_values\((.*),\s*[A-Za-z_][A-Za-z0-9_]*\)$`)

// variable is a Grafana variable reference: $name, ${name} or ${name:format}.
var variable = regexp.MustCompile(`\$\{?([A-Za-z_][A-Za-z0-9_]*)(:[a-z]+)?\}?`)

func checkDashboard(file string) int {
	raw, err := os.ReadFile(file)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", file, err)
		return 1
	}
	plugins.RegisterDefaultPlugins()
	var board dashboard.Dashboard
	if err := board.UnmarshalJSONStrict(raw); !noErrors(err) {
		fmt.Fprintf(os.Stderr, "%s: not a valid dashboard: %v\n", file, err)
		return 1
	}
	if board.Title == nil || *board.Title == "" {
		fmt.Fprintf(os.Stderr, "%s: the dashboard has no title\n", file)
		return 1
	}
	defined := map[string]bool{"__rate_interval": true, "__interval": true, "__range": true}
	var exprs []string
	for _, v := range board.Templating.List {
		defined[v.Name] = true
		if v.Type == dashboard.VariableTypeQuery && v.Query != nil && v.Query.Map != nil {
			if query, ok := v.Query.Map["query"].(string); ok {
				match := labelValues.FindStringSubmatch(query)
				if match == nil {
					fmt.Fprintf(os.Stderr, "%s: variable %s: not label_values(SELECTOR, LABEL): %q\n", file, v.Name, query)
					return 1
				}
				exprs = append(exprs, match[1])
			}
		}
	}
	// Panels and their targets are decoded again one by one: the SDK's strict decoding returns an empty
	// cog.BuildErrors (a typed nil) where it found nothing wrong, and its own callers take that for an error and
	// drop the panel (in PanelOrRowPanel) or the target (in Panel), so board.Panels may miss valid parts.
	var layout struct {
		Panels []struct {
			Type    string            `json:"type"`
			Title   string            `json:"title"`
			Targets []json.RawMessage `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &layout); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", file, err)
		return 1
	}
	var panelsRaw struct {
		Panels []json.RawMessage `json:"panels"`
	}
	_ = json.Unmarshal(raw, &panelsRaw)
	for i, item := range layout.Panels {
		var panel dashboard.Panel
		if err := panel.UnmarshalJSONStrict(panelsRaw.Panels[i]); !noErrors(err) {
			fmt.Fprintf(os.Stderr, "%s: panels[%d]: %v\n", file, i, err)
			return 1
		}
		if item.Type == "row" {
			continue
		}
		if len(item.Targets) == 0 {
			fmt.Fprintf(os.Stderr, "%s: panel %q has no query\n", file, item.Title)
			return 1
		}
		for j, target := range item.Targets {
			var query prometheus.Dataquery
			if err := query.UnmarshalJSONStrict(target); !noErrors(err) {
				fmt.Fprintf(os.Stderr, "%s: panels[%d].targets[%d]: not a Prometheus query: %v\n", file, i, j, err)
				return 1
			}
			exprs = append(exprs, query.Expr)
		}
	}
	panels := len(layout.Panels)
	undefined := 0
	for i, expr := range exprs {
		exprs[i] = variable.ReplaceAllStringFunc(expr, func(ref string) string {
			name := variable.FindStringSubmatch(ref)[1]
			if !defined[name] {
				fmt.Fprintf(os.Stderr, "%s: %q uses the undefined variable $%s\n", file, expr, name)
				undefined++
			}
			if strings.HasPrefix(name, "__") {
				return "5m"
			}
			return "sample"
		})
	}
	fmt.Fprintf(os.Stderr, "%s: %d panels, %d queries\n", file, panels, len(exprs))
	if code := parseAll(exprs); code != 0 || undefined > 0 {
		return 1
	}
	return 0
}

// checkMonitors decodes the monitoring.coreos.com objects of a multi-document YAML file strictly.
func checkMonitors(file string) int {
	raw, err := os.ReadFile(file)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", file, err)
		return 1
	}
	failed := 0
	for i, doc := range strings.Split("\n"+string(raw), "\n---") {
		var meta struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Metadata   struct {
				Name string `json:"name"`
			} `json:"metadata"`
		}
		if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
			fmt.Fprintf(os.Stderr, "%s: document %d: %v\n", file, i, err)
			failed++
			continue
		}
		if meta.APIVersion != "monitoring.coreos.com/v1" {
			continue
		}
		var target any
		switch meta.Kind {
		case "PodMonitor":
			target = &monitoringv1.PodMonitor{}
		case "ServiceMonitor":
			target = &monitoringv1.ServiceMonitor{}
		case "PrometheusRule":
			target = &monitoringv1.PrometheusRule{}
		default:
			fmt.Fprintf(os.Stderr, "%s: %s %s: not a kind promcheck knows\n", file, meta.Kind, meta.Metadata.Name)
			failed++
			continue
		}
		if err := yaml.UnmarshalStrict([]byte(doc), target); err != nil {
			fmt.Fprintf(os.Stderr, "%s: %s %s: %v\n", file, meta.Kind, meta.Metadata.Name, err)
			failed++
			continue
		}
		if rule, ok := target.(*monitoringv1.PrometheusRule); ok {
			for _, group := range rule.Spec.Groups {
				for _, r := range group.Rules {
					if _, err := parser.ParseExpr(r.Expr.String()); err != nil {
						fmt.Fprintf(os.Stderr, "%s: PrometheusRule %s: group %s: %s%s: %v\n", file, meta.Metadata.Name,
							group.Name, r.Alert, r.Record, err)
						failed++
					}
				}
			}
		}
		fmt.Printf("%s %s\n", meta.Kind, meta.Metadata.Name)
	}
	if failed > 0 {
		return 1
	}
	return 0
}

// noErrors tells whether err is no error: the SDK may return an empty cog.BuildErrors as a non-nil error.
func noErrors(err error) bool {
	var built cog.BuildErrors
	if errors.As(err, &built) {
		return len(built) == 0
	}
	return err == nil
}
