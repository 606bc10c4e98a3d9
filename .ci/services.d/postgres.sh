#!/usr/bin/env bash
# Starts the PostgreSQL that Debian's `postgresql` package installed, with a database and user for the tests.
# Exports nothing: the tests read the URL from var/ci/postgres.url (or DETECTOR_TEST_POSTGRES_URL).
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v pg_lsclusters >/dev/null || { echo "postgres.sh: PostgreSQL is not installed; its tests will skip"; exit 0; }
read -r version cluster _ < <(pg_lsclusters --no-header | head -n 1)
pg_ctlcluster "$version" "$cluster" start 2>/dev/null || true      # already running is fine
port=$(pg_lsclusters --no-header | awk -v v="$version" -v c="$cluster" '$1 == v && $2 == c {print $3}')
for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p "$port" && break; sleep 1; done
as_postgres() { su postgres -c "$1"; }
as_postgres "psql -p $port -tAc \"SELECT 1 FROM pg_roles WHERE rolname = 'detector'\"" | grep -q 1 \
  || as_postgres "psql -p $port -c \"CREATE ROLE detector LOGIN PASSWORD 'detector'\""
as_postgres "psql -p $port -tAc \"SELECT 1 FROM pg_database WHERE datname = 'detector_test'\"" | grep -q 1 \
  || as_postgres "createdb -p $port -O detector detector_test"
mkdir -p var/ci
echo "postgresql+psycopg://detector:detector@127.0.0.1:$port/detector_test" > var/ci/postgres.url
echo "postgres.sh: PostgreSQL $version/$cluster on port $port, URL in var/ci/postgres.url"
