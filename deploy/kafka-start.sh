#!/bin/sh
# Starts the compose deployment's broker (apache/kafka, KRaft, one node) with
# authentication and authorisation: the only listener other containers reach
# (BROKER, kafka:19092) takes SASL/SCRAM-SHA-512, and the StandardAuthorizer
# refuses whatever no ACL allows (ACLs: kafka-setup.sh). The controller
# listener is on the container's loopback only, with SASL/PLAIN (KRaft keeps
# SCRAM credentials in its metadata log, which the controller must serve
# before it can check them). The broker and the tools act as "admin", the
# one super user; its password comes from the secrets volume and is put into
# the storage at format time (--add-scram), so the broker can authenticate
# to itself from the first start.
set -eu
umask 077
admin=$(cat /secrets/kafka-admin-password)
conf=/tmp/kafka
mkdir -p "$conf"
cat >"$conf/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@localhost:29093
listeners=CONTROLLER://localhost:29093,BROKER://:19092
advertised.listeners=BROKER://kafka:19092
listener.security.protocol.map=CONTROLLER:SASL_PLAINTEXT,BROKER:SASL_PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=BROKER
sasl.mechanism.controller.protocol=PLAIN
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
listener.name.controller.sasl.enabled.mechanisms=PLAIN
listener.name.controller.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="$admin" user_admin="$admin";
listener.name.broker.sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.broker.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="$admin";
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
super.users=User:admin
allow.everyone.if.no.acl.found=false
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
log.dirs=/tmp/kraft-combined-logs
PROPS
# For the healthcheck and the setup job: the admin's client settings.
cat >"$conf/admin.properties" <<PROPS
security.protocol=SASL_PLAINTEXT
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="$admin";
PROPS
/opt/kafka/bin/kafka-storage.sh format --ignore-formatted --cluster-id "$CLUSTER_ID" \
  --config "$conf/server.properties" --add-scram "SCRAM-SHA-512=[name=admin,password=$admin]"
exec /opt/kafka/bin/kafka-server-start.sh "$conf/server.properties"
