# Sourced by scripts/kafka.sh when PYGOKA_KAFKA_SASL_SSL_PORT is set: a SASL_SSL listener (TLS with
# certificates made here by openssl, SASL/SCRAM-SHA-512 with users made here), as production brokers have.
#
# In $RUN_DIR/sasl-ssl: ca.pem (the CA clients trust), broker.pem (the broker's key and certificate),
# other-ca.pem (a CA that did not sign it, for tests of an untrusted certificate), users (name password, one
# a line, mode 600) and client/ (a PYGOKA_KAFKA_CONFIG_DIR for user pygoka: one librdkafka setting per file).
# The certificates and users are made once per fresh data dir (the users live in the cluster metadata).
# The broker's certificate names IP:$HOST and DNS:localhost, plus PYGOKA_KAFKA_SSL_SANS (comma-separated openssl
# subjectAltName entries, e.g. DNS:kafka,DNS:kafka.demo.svc: the names clients dial, verified by them).

SASL_SSL_DIR="$RUN_DIR/sasl-ssl"
#: SASL_SSL_USERS are the SCRAM users made: pygoka (the clients') and admin.
SASL_SSL_USERS=(pygoka admin)

sasl_ssl_make_files() {
    command -v openssl >/dev/null 2>&1 || die "openssl not found (needed for PYGOKA_KAFKA_SASL_SSL_PORT)"
    rm -rf "$SASL_SSL_DIR"
    mkdir -p "$SASL_SSL_DIR/client"
    local d="$SASL_SSL_DIR" name
    (
        umask 077
        openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=pygoka test CA" \
            -keyout "$d/ca.key" -out "$d/ca.pem" >/dev/null 2>&1
        openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=pygoka untrusted CA" \
            -keyout "$d/other-ca.key" -out "$d/other-ca.pem" >/dev/null 2>&1
        openssl req -newkey rsa:2048 -nodes -subj "/CN=$HOST" -keyout "$d/broker.key" \
            -out "$d/broker.csr" >/dev/null 2>&1
        printf 'subjectAltName=IP:%s,DNS:localhost%s\n' "$HOST" "${PYGOKA_KAFKA_SSL_SANS:+,$PYGOKA_KAFKA_SSL_SANS}" \
            >"$d/san.ext"
        openssl x509 -req -in "$d/broker.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial -days 30 \
            -extfile "$d/san.ext" -out "$d/broker.crt" >/dev/null 2>&1
        # Kafka's PEM key store: a PKCS#8 key followed by the certificate chain.
        openssl pkcs8 -topk8 -nocrypt -in "$d/broker.key" -out "$d/broker.p8" >/dev/null 2>&1
        cat "$d/broker.p8" "$d/broker.crt" "$d/ca.pem" >"$d/broker.pem"
        : >"$d/users"
        for name in "${SASL_SSL_USERS[@]}"; do
            printf '%s %s\n' "$name" "$(head -c 18 /dev/urandom | base64 | tr '+/' 'xy')" >>"$d/users"
        done
    ) || die "making the SASL_SSL certificates failed"
    printf '%s' SASL_SSL >"$d/client/security.protocol"
    printf '%s' SCRAM-SHA-512 >"$d/client/sasl.mechanism"
    printf '%s' pygoka >"$d/client/sasl.username"
    (umask 077 && sasl_ssl_password pygoka >"$d/client/sasl.password")
    printf '%s' "$d/ca.pem" >"$d/client/ssl.ca.location"
}

sasl_ssl_password() {
    awk -v user="$1" '$1 == user { printf "%s", $2 }' "$SASL_SSL_DIR/users"
}

# The storage tool's --add-scram arguments: every user, made at format time.
sasl_ssl_scram_args() {
    local name
    for name in "${SASL_SSL_USERS[@]}"; do
        printf -- '--add-scram=SCRAM-SHA-512=[name=%s,password=%s]\n' "$name" "$(sasl_ssl_password "$name")"
    done
}

# Add the listener to the rendered server.properties ($1).
sasl_ssl_configure() {
    local props="$1" listener="SASL_SSL://$HOST:$SASL_SSL_PORT"
    sed -i -e "s|^listeners=.*|&,$listener|" -e "s|^advertised.listeners=.*|&,$listener|" \
        -e "s|^listener.security.protocol.map=.*|&,SASL_SSL:SASL_SSL|" "$props"
    cat >>"$props" <<EOF

# --- PYGOKA_KAFKA_SASL_SSL_PORT: TLS + SASL/SCRAM-SHA-512 (scripts/kafka/sasl-ssl.sh)
sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.ssl.keystore.type=PEM
listener.name.sasl_ssl.ssl.keystore.location=$SASL_SSL_DIR/broker.pem
EOF
}
