#!/bin/sh
# Installs the third-party clients that the integration tests produce and read with, so that the
# tests never agree only with our own code: librdkafka (kcat, python3-confluent-kafka), Apache
# Avro's Python library (python3-avro), and the AWS CLI and boto3 to read S3 back. Also promtool
# (Debian package prometheus), which checks and unit-tests ops/prometheus/alerts.yml.
# Debian packages; installed only where missing, and only when we may (root with apt-get).
set -e
# Debian's own interpreter: the Debian python3-* packages are installed for it, not for a pyenv one.
PY=/usr/bin/python3
missing=""
[ -x "$PY" ] || missing="$missing python3"
command -v kcat >/dev/null 2>&1 || missing="$missing kcat"
command -v aws >/dev/null 2>&1 || missing="$missing awscli"
command -v promtool >/dev/null 2>&1 || missing="$missing prometheus"
"$PY" -c 'import avro' >/dev/null 2>&1 || missing="$missing python3-avro"
"$PY" -c 'import confluent_kafka' >/dev/null 2>&1 || missing="$missing python3-confluent-kafka"
"$PY" -c 'import boto3' >/dev/null 2>&1 || missing="$missing python3-boto3"
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "ensure-test-tools: installing$missing" >&2
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
else
  echo "ensure-test-tools: missing$missing; install them (Debian: apt-get install$missing)" >&2
  exit 1
fi
