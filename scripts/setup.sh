#!/usr/bin/env bash
# Installs what the project needs on Debian (apt + a venv in .venv) and starts Redis and
# RabbitMQ when they are not already running. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive

apt_needs=()
command -v smbd >/dev/null || apt_needs+=(samba)
command -v smbclient >/dev/null || apt_needs+=(smbclient)
command -v redis-server >/dev/null || apt_needs+=(redis-server)
command -v rabbitmq-server >/dev/null || apt_needs+=(rabbitmq-server)
command -v rclone >/dev/null || apt_needs+=(rclone)
command -v slapd >/dev/null || [ -x /usr/sbin/slapd ] || apt_needs+=(slapd)
command -v ldapsearch >/dev/null || apt_needs+=(ldap-utils)
dpkg -s samba-ad-dc >/dev/null 2>&1 || apt_needs+=(samba-ad-dc)  # the tests' AD domain controller
command -v winbindd >/dev/null || apt_needs+=(winbind)
[ -x /usr/bin/chromium ] || apt_needs+=(chromium)  # the console's browser tests (no download)
command -v python3 >/dev/null || apt_needs+=(python3)
python3 -c 'import ensurepip, venv' 2>/dev/null || apt_needs+=(python3-venv python3-pip)
# gssapi and krb5 (Kerberos logons) build against MIT Kerberos' headers.
dpkg -s libkrb5-dev >/dev/null 2>&1 || apt_needs+=(libkrb5-dev)
command -v gcc >/dev/null || apt_needs+=(gcc)
dpkg -s python3-dev >/dev/null 2>&1 || apt_needs+=(python3-dev)
if [ ${#apt_needs[@]} -gt 0 ]; then
  echo "apt: installing ${apt_needs[*]}"
  apt-get update -q >/dev/null
  apt-get install -y -q "${apt_needs[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/pip install -q --upgrade pip >/dev/null
.venv/bin/pip install -q -e '.[test]'

if ! redis-cli -h 127.0.0.1 ping >/dev/null 2>&1; then
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
fi
if ! rabbitmqctl -q status >/dev/null 2>&1; then
  rabbitmq-server -detached
fi
rabbitmqctl -q await_startup --timeout 120 >/dev/null
for _ in $(seq 1 50); do redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 && break; sleep 0.2; done
echo "setup done: .venv ready, Redis and RabbitMQ running"
