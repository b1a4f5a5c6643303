-- One database and one role per service: no service can read another's
-- tables. The postgres-setup job applies this on every `docker compose up`
-- with psql, the passwords passed as variables from the secrets volume
-- (kinoteka dev-secrets makes them, or takes AUTH_DB_PASSWORD & co. from
-- the host), so a changed password reaches the role as it reaches the
-- service's pgpass file. Every statement is safe to repeat.
SELECT 'CREATE ROLE auth LOGIN' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'auth') \gexec
SELECT 'CREATE ROLE films LOGIN' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'films') \gexec
SELECT 'CREATE ROLE mailer LOGIN' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'mailer') \gexec
ALTER ROLE auth PASSWORD :'auth_password';
ALTER ROLE films PASSWORD :'films_password';
ALTER ROLE mailer PASSWORD :'mailer_password';
SELECT 'CREATE DATABASE auth OWNER auth' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'auth') \gexec
SELECT 'CREATE DATABASE films OWNER films' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'films') \gexec
SELECT 'CREATE DATABASE mailer OWNER mailer' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'mailer') \gexec
REVOKE ALL ON DATABASE auth FROM PUBLIC;
REVOKE ALL ON DATABASE films FROM PUBLIC;
REVOKE ALL ON DATABASE mailer FROM PUBLIC;
