#!/bin/sh
# First start of the postgres service in docker/compose.cluster.yaml (the image runs the files of
# /docker-entrypoint-initdb.d once, on an empty data volume, as the superuser): the login role
# `carma` (not a superuser) with the password from CARMA_DB_PASSWORD, the database `carma` it owns,
# and the tablespace `carma_redundancy` on its own volume, where carmad puts the redundancy copies
# (CARMA_REDUNDANCY_TABLESPACE). Changing CARMA_DB_PASSWORD later does not change the role's
# password: run ALTER ROLE carma PASSWORD '…' as well.
set -eu
if [ -z "${CARMA_DB_PASSWORD:-}" ]; then
  echo "10-carma.sh: CARMA_DB_PASSWORD is not set" >&2
  exit 1
fi
psql -v ON_ERROR_STOP=1 --no-psqlrc --no-password --username "$POSTGRES_USER" --dbname postgres \
  --set password="$CARMA_DB_PASSWORD" <<'SQL'
CREATE ROLE carma LOGIN PASSWORD :'password';
CREATE DATABASE carma OWNER carma;
CREATE TABLESPACE carma_redundancy OWNER carma LOCATION '/var/lib/postgresql/redundancy';
SQL
