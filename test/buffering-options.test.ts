import { InvalidSizeError } from '../src/errors'
import { DEFAULT_BUFFER_MEMORY_BYTES } from '../src/options'
import { normalizeServiceSpec } from '../src/service-spec'

const SERVICE = { name: 'web', hosts: ['app.test'], targets: ['web:3000'] }

describe('normalizeServiceSpec buffering', () => {
  it('defaults to no buffering and no limits, 1 MiB in memory, for a spec saved without them', () => {
    expect(normalizeServiceSpec(SERVICE).buffering).toEqual({
      requests: false, responses: false, memoryBytes: DEFAULT_BUFFER_MEMORY_BYTES, maxRequestBodyBytes: 0, maxResponseBodyBytes: 0,
    })
    expect(DEFAULT_BUFFER_MEMORY_BYTES).toBe(1_048_576)
  })

  it('keeps what is given and fills in the rest', () => {
    expect(normalizeServiceSpec({ ...SERVICE, buffering: { responses: true, maxResponseBodyBytes: 10 } }).buffering).toEqual({
      requests: false, responses: true, memoryBytes: DEFAULT_BUFFER_MEMORY_BYTES, maxRequestBodyBytes: 0, maxResponseBodyBytes: 10,
    })
  })

  it.each([
    ['a negative limit', { maxRequestBodyBytes: -1 }, /^invalid max request body "-1": must be a whole number of bytes, 0 or more$/],
    ['a fractional memory size', { memoryBytes: 0.5 }, /^invalid buffer memory "0.5": must be a whole number of bytes/],
    ['a limit no number holds exactly', { maxResponseBodyBytes: 2 ** 60 }, /^invalid max response body "\d+": at most 9007199254740991 bytes$/],
  ])('refuses %s with one line', (_case, buffering, message) => {
    expect(() => normalizeServiceSpec({ ...SERVICE, buffering })).toThrow(InvalidSizeError)
    expect(() => normalizeServiceSpec({ ...SERVICE, buffering })).toThrow(message)
  })
})
