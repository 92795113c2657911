/**
 * Test helpers shared by every integration test: real upstream servers, real `mproxy run`
 * processes, a raw HTTP client, a keep-alive load generator and `waitUntil`.
 *
 * Everything a helper starts is registered for cleanup the moment it exists: resources created
 * inside a test are released after that test, resources created in `beforeAll` after the file.
 * Leftover child processes are SIGKILLed when the jest worker exits.
 */
export * from './timing'
export * from './cleanup'
export * from './wait'
export * from './backends'
export * from './cli'
export * from './proxy'
export * from './client'
export * from './load'
export * from './certificates'
export * from './pebble'
export * from './redis'
export * from './h2'
export * from './kamal'
