# The two commands (README): `make run` and `make test`. Everything else is a helper.
.PHONY: run test lint bench kafka-start kafka-stop clean

run:  ## install into .venv, start Kafka, run simulated calls through the pipeline, show results
	scripts/bootstrap.sh
	.venv/bin/callguard demo

test:  ## lint + unit + agent + integration tests (starts and stops its own Kafka)
	scripts/test.sh

lint:
	scripts/bootstrap.sh
	.venv/bin/ruff check . && .venv/bin/mypy pipelines schemas connectors

bench:  ## Faust vs raw confluent-kafka throughput on a local broker
	scripts/bootstrap.sh
	docker/kafka/kafka.sh start
	.venv/bin/python -m bench.faust_vs_raw

kafka-start:
	docker/kafka/kafka.sh start

kafka-stop:
	docker/kafka/kafka.sh stop

clean:  ## stop local Kafka and delete local state (var/), keep caches
	-docker/kafka/kafka.sh stop
	rm -rf var
