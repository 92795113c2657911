import { getBody, request, startBackend, startProxy, timed, waitUntil, type Response } from './helpers'

/** How long the in-flight request on the old target takes. */
const SLOW_REQUEST_MS = 3_000
/** Clock slack between the client seeing a response end and the proxy counting it done. */
const CLOCK_SLACK_MS = 100

describe('drain', () => {
  it('waits for a request in flight on the old target before deploy returns', async () => {
    const [a, b] = [await startBackend(), await startBackend()]
    const proxy = await startProxy()
    await proxy.deploy([a.address])
    const slow = timed(request(proxy.port, { path: `/slow?ms=${SLOW_REQUEST_MS}` }))
    await waitUntil(() => a.appRequests >= 1, undefined, 'the slow request to reach the old target')
    const deployStarted = Date.now()

    const deploy = timed(proxy.deploy([b.address], ['--drain-timeout', '20s']))
    // New requests go to the new target while the old one drains.
    await waitUntil(async () => (await getBody(proxy.port)) === b.name, 10_000, 'traffic to switch to the new target')
    const slowResult = await slow
    const deployResult = await deploy

    expect(slowResult.error).toBeUndefined()
    expect(slowResult.value).toMatchObject<Partial<Response>>({ status: 200, body: a.name })
    expect(deployResult.error).toBeUndefined()
    expect(deployResult.at).toBeGreaterThanOrEqual(slowResult.at - CLOCK_SLACK_MS)
    // The slow request had most of its 3 s left when the deploy started.
    expect(deployResult.at - deployStarted).toBeGreaterThan(SLOW_REQUEST_MS / 2)
    expect(deployResult.value?.stdout).toMatch(/drain/i)
  })

  it('bounds the wait with --drain-timeout and cuts the request that is still running', async () => {
    const [a, b] = [await startBackend(), await startBackend()]
    const proxy = await startProxy()
    await proxy.deploy([a.address])
    const slow = timed(request(proxy.port, { path: '/slow?ms=10000' }))
    await waitUntil(() => a.appRequests >= 1, undefined, 'the slow request to reach the old target')

    const deployStarted = Date.now()
    const deployResult = await timed(proxy.deploy([b.address], ['--drain-timeout', '500ms']))
    const deployMs = deployResult.at - deployStarted
    const slowResult = await slow

    expect(deployResult.error).toBeUndefined()
    // Far from the slow request's 10 s, whatever a loaded machine adds to the health check and the CLI.
    expect(deployMs).toBeLessThan(5_000)
    // No response had started: 504 (or, at worst, the connection is cut).
    if (slowResult.value) expect(slowResult.value.status).toBe(504)
    else expect(slowResult.error).toBeDefined()
    expect(slowResult.at - deployStarted).toBeLessThan(2_500)
    expect(await getBody(proxy.port)).toBe(b.name)
  })

  it('returns at once when nothing is in flight on the old target', async () => {
    const [a, b] = [await startBackend(), await startBackend()]
    const proxy = await startProxy()
    await proxy.deploy([a.address])
    expect(await getBody(proxy.port)).toBe(a.name)

    const result = await proxy.deploy([b.address], ['--drain-timeout', '20s'])

    expect(result.durationMs).toBeLessThan(3_000)
  })

  it('drains in-flight requests on remove', async () => {
    const backend = await startBackend()
    const proxy = await startProxy()
    await proxy.deploy([backend.address], ['--host', 'app.test'])
    const slow = timed(request(proxy.port, { host: 'app.test', path: '/slow?ms=1500' }))
    await waitUntil(() => backend.appRequests >= 1, undefined, 'the slow request to reach the backend')

    const removed = await timed(proxy.cli(['remove', 'app.test']))
    // Routing stopped at once; the request already running was allowed to finish.
    const slowResult = await slow

    expect(removed.value?.code).toBe(0)
    expect(slowResult.value).toMatchObject<Partial<Response>>({ status: 200, body: backend.name })
    expect(removed.at).toBeGreaterThanOrEqual(slowResult.at - CLOCK_SLACK_MS)
    expect((await request(proxy.port, { host: 'app.test' })).status).toBe(404)
  })
})
