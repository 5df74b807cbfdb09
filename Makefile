# GridCommand — the two commands: `make demo` and `make test` (and `make stop`).
# Each installs what is missing, so they work on a fresh Debian/Ubuntu machine.

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
# PostGIS must match the PostgreSQL server: the installed one, else Debian 12's 15.
PG_MAJOR ?= $(shell ls /usr/lib/postgresql 2>/dev/null | sort -n | tail -1 | grep . || echo 15)
SYSTEM_PACKAGES := postgresql-$(PG_MAJOR) postgresql-$(PG_MAJOR)-postgis-3 gdal-bin libgdal-dev redis-server \
	chromium fonts-noto-cjk gettext python3-venv python3-dev nginx
STAMP := $(VENV)/.installed
SECRET := .local/secret_key

# Settings for the demo server: production settings over plain HTTP on localhost.
DEMO_ENV = DJANGO_SECRET_KEY="$$(cat $(SECRET))" DJANGO_SECURE=0

.PHONY: help deps venv messages services migrate secret demo-data demo serve test lint typecheck migrations-check \
	deploy-check pytest stop clean bench cluster cluster-stop faults

help:
	@echo "make demo   install what is missing, start PostGIS + Redis under .local/, load the demo village, serve on http://$(HOST):$(PORT)"
	@echo "make test   the same set-up, then lint, type check, migrations check, deploy check and the whole test suite"
	@echo "make stop   stop the private PostgreSQL and Redis"
	@echo "make bench  run every benchmark in bench/ with --quick"
	@echo "make cluster  $(CLUSTER_PROCESSES) Daphne processes behind nginx on http://127.0.0.1:$(CLUSTER_PORT) (+ a streaming replica)"
	@echo "make faults   the fault suite: reports through disconnects, Redis/Daphne/PostgreSQL restarts"

# --- set-up ---------------------------------------------------------------------------------

deps:
	@missing=""; for p in $(SYSTEM_PACKAGES); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ]; then \
			echo "deps: installing$$missing"; \
			export DEBIAN_FRONTEND=noninteractive; \
			apt-get update -q && apt-get install -y -q --no-install-recommends $$missing; \
		else \
			echo "deps: missing system packages. Run as root:"; \
			echo "  sudo apt-get update && sudo apt-get install -y$$missing"; exit 1; \
		fi; \
	fi

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	@touch $(STAMP)

venv: deps $(STAMP) messages

# The zh-Hans (default) and English catalogs, compiled from the committed .po files.
messages: $(STAMP)
	@GRIDCOMMAND_TESTING=1 $(PY) manage.py compilemessages --ignore=.venv --ignore=.local -v 0

services: venv
	@$(PY) -m command.localstack start

$(SECRET):
	@mkdir -p .local && umask 077 && $(PY) -c "import secrets; print(secrets.token_urlsafe(50))" > $(SECRET)

migrate: services $(SECRET)
	@$(DEMO_ENV) $(PY) manage.py migrate --noinput -v 0

# --- make demo ------------------------------------------------------------------------------

demo-data: migrate
	@$(DEMO_ENV) $(PY) manage.py seed --if-empty
	@$(DEMO_ENV) $(PY) manage.py demo_logins
	@$(DEMO_ENV) $(PY) manage.py collectstatic --noinput -v 0

demo: demo-data serve

serve:
	@echo ""
	@echo "GridCommand is at http://$(HOST):$(PORT)/  (Ctrl-C stops the server; 'make stop' stops PostgreSQL and Redis)"
	@echo "  control room  http://$(HOST):$(PORT)/control/  (desk: /control/?mode=desk)"
	@echo "  field app     http://$(HOST):$(PORT)/field/"
	@echo "  API docs      http://$(HOST):$(PORT)/api/docs/"
	@echo "  OGC API       http://$(HOST):$(PORT)/ogc/"
	@echo "  admin         http://$(HOST):$(PORT)/admin/"
	@echo ""
	$(DEMO_ENV) $(VENV)/bin/daphne -b $(HOST) -p $(PORT) command.asgi:application

# --- make cluster: N Daphne processes behind nginx, a streaming replica for map reads ----------

CLUSTER_PROCESSES ?= 2
CLUSTER_PORT ?= 8080

cluster: demo-data
	@$(DEMO_ENV) $(PY) -m command.cluster start --processes $(CLUSTER_PROCESSES) --port $(CLUSTER_PORT) --replica

cluster-stop:
	@test -x $(PY) && $(PY) -m command.cluster stop || true

# The fault suite in full (a short form runs in `make test`: tests/faults/).
FAULT_REPORTS ?= 600
faults: services
	$(PY) -m tests.faults.suite --reports $(FAULT_REPORTS)

# --- make test ------------------------------------------------------------------------------

test: services lint typecheck migrations-check deploy-check pytest

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: venv
	$(VENV)/bin/mypy command field_api realtime maps fixtures $(wildcard bench/*.py)

migrations-check: services
	GRIDCOMMAND_TESTING=1 $(PY) manage.py makemigrations --check --dry-run
	GRIDCOMMAND_TESTING=1 $(PY) manage.py roles_migration --check
	GRIDCOMMAND_TESTING=1 $(PY) manage.py report_sql_freeze --check

# Production-like settings: no debug, HTTPS hardening on, a real (throw-away) secret key.
deploy-check: venv
	DJANGO_DEBUG=0 DJANGO_SECURE=1 ALLOWED_HOSTS=gridcommand.example.org \
	DJANGO_SECRET_KEY="$$($(PY) -c 'import secrets; print(secrets.token_urlsafe(50))')" \
	$(PY) manage.py check --deploy --fail-level WARNING

pytest: services
	$(VENV)/bin/pytest $(PYTEST_ARGS)

bench: services
	@for b in $(filter-out bench/benchlib.py,$(wildcard bench/*.py)); do echo "== $$b"; $(PY) $$b --quick || exit 1; done

# --- housekeeping ---------------------------------------------------------------------------

stop: cluster-stop
	@test -x $(PY) && $(PY) -m command.localstack stop || $(PYTHON) -m command.localstack stop

clean: stop
	rm -rf .local $(VENV)
