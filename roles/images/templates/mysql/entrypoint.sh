#!/bin/sh
# Initialise an empty data directory the way the official mysql image does, then run.
set -eu
if [ "${1:-}" != mariadbd ] && [ "${1:-}" != mysqld ]; then exec "$@"; fi
chown -R mysql:mysql /var/lib/mysql /run/mysqld
# A marker of our own: Debian's package leaves system tables in the image, which Docker copies into
# a new volume, so "the tables exist" does not mean "the users were made".
if [ ! -e /var/lib/mysql/.qoddi-initialised ]; then
  : "${MYSQL_ROOT_PASSWORD:?MYSQL_ROOT_PASSWORD must be set}"
  [ -d /var/lib/mysql/mysql ] || mariadb-install-db --user=mysql --datadir=/var/lib/mysql --skip-test-db >/dev/null
  # SQL needs the grant tables loaded, which --bootstrap does not do: run a private server (socket
  # only, no network), as the official image does, and talk to it as root over the socket.
  socket=/run/mysqld/qoddi-init.sock
  gosu mysql mariadbd --datadir=/var/lib/mysql --skip-networking --socket="$socket" &
  pid=$!
  for _ in $(seq 1 120); do mariadb --socket="$socket" -uroot -e 'SELECT 1' >/dev/null 2>&1 && break; sleep 0.5; done
  {
    echo "CREATE USER IF NOT EXISTS 'root'@'%' IDENTIFIED BY '$MYSQL_ROOT_PASSWORD';"
    echo "GRANT ALL ON *.* TO 'root'@'%' WITH GRANT OPTION;"
    if [ -n "${MYSQL_DATABASE:-}" ]; then echo "CREATE DATABASE IF NOT EXISTS \`$MYSQL_DATABASE\`;"; fi
    if [ -n "${MYSQL_USER:-}" ]; then
      echo "CREATE USER '$MYSQL_USER'@'%' IDENTIFIED BY '${MYSQL_PASSWORD:?MYSQL_PASSWORD must be set}';"
      if [ -n "${MYSQL_DATABASE:-}" ]; then echo "GRANT ALL ON \`$MYSQL_DATABASE\`.* TO '$MYSQL_USER'@'%';"; fi
    fi
    # Last: from here on root needs its password, over the socket too.
    echo "ALTER USER 'root'@'localhost' IDENTIFIED BY '$MYSQL_ROOT_PASSWORD';"
    echo "FLUSH PRIVILEGES;"
  } | mariadb --socket="$socket" -uroot
  # The password in the environment (MYSQL_PWD), never an argument: `ps` on the node shows arguments.
  MYSQL_PWD="$MYSQL_ROOT_PASSWORD" mariadb-admin --socket="$socket" -uroot shutdown
  wait "$pid" || true
  touch /var/lib/mysql/.qoddi-initialised
fi
exec gosu mysql mariadbd --datadir=/var/lib/mysql --bind-address=0.0.0.0 --port=3306
