# mproxy developer tasks. `make` builds, `make test` runs the same command as CI (.ci/run).
.PHONY: build run test docker clean bench deps

build: node_modules/.package-lock.json
	npm run build

# npm ci only when node_modules is missing or package-lock.json changed since the last install
# (npm writes node_modules/.package-lock.json on every install, so it is the install's timestamp).
node_modules/.package-lock.json: package-lock.json
	npm ci

deps: node_modules/.package-lock.json

# Builds if needed, then runs the proxy in the foreground (HTTP_PORT=8080 make run for a high port).
# `npm start` puts node_modules/.bin first on PATH, so the proxy runs on the pinned Node 24
# (the `node` devDependency) whatever the machine's own Node is.
run: build
	npm start

test:
	./scripts/test.sh

docker:
	docker build -t mproxy .

clean:
	rm -rf dist node_modules

bench: node_modules/.package-lock.json
	npm run bench
