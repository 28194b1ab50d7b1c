#!/bin/sh
# One-shot job of docker-compose.yml (runs in temporalio/admin-tools): create
# Temporal's two databases on the shared PostgreSQL and bring their schemas to
# the version this image ships. Running it again changes nothing.
set -eu
: "${POSTGRES_SEEDS:?}" "${POSTGRES_USER:?}" "${SQL_PASSWORD:?}"
port="${DB_PORT:-5432}"
schemas=/etc/temporal/schema/postgresql/v12

until nc -z "$POSTGRES_SEEDS" "$port"; do
  echo "setup-schema: waiting for PostgreSQL at $POSTGRES_SEEDS:$port"
  sleep 2
done

tool() {
  temporal-sql-tool --plugin postgres12 --ep "$POSTGRES_SEEDS" -p "$port" -u "$POSTGRES_USER" "$@"
}

for entry in temporal:temporal temporal_visibility:visibility; do
  db="${entry%%:*}"
  dir="${entry#*:}"
  # An existing database is fine; any other failure shows up in the next step.
  tool --db "$db" create || echo "setup-schema: database $db exists"
  tool --db "$db" setup-schema -v 0.0
  tool --db "$db" update-schema -d "$schemas/$dir/versioned"
done
echo "setup-schema: Temporal's schemas are current"
