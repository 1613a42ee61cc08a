#!/bin/sh
# First start: a cluster whose superuser is $POSTGRES_USER (password $POSTGRES_PASSWORD)
# with database $POSTGRES_DB, reachable over the network; then the server in the foreground.
set -eu
user=${POSTGRES_USER:-postgres}
chown -R postgres:postgres "$PGDATA" /var/run/postgresql
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  pw=$(mktemp) && echo "${POSTGRES_PASSWORD:?}" > "$pw" && chown postgres "$pw"
  runuser -u postgres -- initdb -D "$PGDATA" -U "$user" --pwfile="$pw" \
    --auth-local=trust --auth-host=scram-sha-256
  rm -f "$pw"
  echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
  echo "listen_addresses = '*'" >> "$PGDATA/postgresql.conf"
  if [ -n "${POSTGRES_DB:-}" ] && [ "$POSTGRES_DB" != postgres ]; then
    runuser -u postgres -- pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start
    runuser -u postgres -- psql -U "$user" -d postgres -c "CREATE DATABASE \"$POSTGRES_DB\""
    runuser -u postgres -- pg_ctl -D "$PGDATA" -m fast -w stop
  fi
fi
exec runuser -u postgres -- postgres -D "$PGDATA"
