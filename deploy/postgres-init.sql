-- One database and one role per service: no service can read another's
-- tables. Passwords are development defaults; set real ones in production.
CREATE ROLE auth LOGIN PASSWORD 'auth';
CREATE ROLE films LOGIN PASSWORD 'films';
CREATE ROLE mailer LOGIN PASSWORD 'mailer';
CREATE DATABASE auth OWNER auth;
CREATE DATABASE films OWNER films;
CREATE DATABASE mailer OWNER mailer;
REVOKE ALL ON DATABASE auth FROM PUBLIC;
REVOKE ALL ON DATABASE films FROM PUBLIC;
REVOKE ALL ON DATABASE mailer FROM PUBLIC;
