#!/bin/sh
# Runs on every `docker compose up`, as the broker's admin, before any
# service starts: creates the topics, one SCRAM-SHA-512 user per service
# (its password from the secrets volume, set again on each run so a changed
# secret takes effect) and the ACLs that give each service exactly what it
# uses. Everything is idempotent. deploy/compose_test.go reads the "acl"
# lines below and holds them against the services' configuration.
set -eu
umask 077
admin=$(cat /secrets/kafka-admin-password)
props=/tmp/admin.properties
cat >"$props" <<PROPS
security.protocol=SASL_PLAINTEXT
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="$admin";
PROPS
bin=/opt/kafka/bin
server="--bootstrap-server kafka:19092 --command-config $props"

# The mail topic holds one-time codes: short retention (6 h by default).
for t in mail.requests mail.requests.dlq; do
  $bin/kafka-topics.sh $server --create --if-not-exists --topic "$t" \
    --partitions "$MAIL_PARTITIONS" --replication-factor 1 --config retention.ms="$MAIL_RETENTION_MS"
done
# Account changes, keyed by user id: compacted, so the topic keeps each
# account's latest state (a deletion's tombstone too) for a new consumer
# group to read from the start.
$bin/kafka-topics.sh $server --create --if-not-exists --topic users \
  --partitions "$MAIL_PARTITIONS" --replication-factor 1 --config cleanup.policy=compact
$bin/kafka-topics.sh $server --create --if-not-exists --topic users.dlq --partitions 1 --replication-factor 1

for user in auth mailer films; do
  $bin/kafka-configs.sh $server --alter --entity-type users --entity-name "$user" \
    --add-config "SCRAM-SHA-512=[password=$(cat /secrets/kafka-$user-password)]"
done

# acl PRINCIPAL OPERATION topic|group NAME (Write and Read imply Describe).
acl() { $bin/kafka-acls.sh $server --add --allow-principal "User:$1" --operation "$2" "--$3" "$4"; }
acl auth   Write topic mail.requests
acl auth   Write topic users
acl mailer Read  topic mail.requests
acl mailer Read  group kinoteka-mailer
acl mailer Write topic mail.requests.dlq
acl films  Read  topic users
acl films  Read  group films
acl films  Write topic users.dlq
