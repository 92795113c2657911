/**
 * Reads the ALPN protocols a TLS ClientHello offers, from the first bytes of a connection,
 * without consuming them. ACME's TLS-ALPN-01 validator offers only `acme-tls/1`, and must be
 * answered with a challenge certificate: Node picks certificates by SNI before it sees ALPN,
 * so the connection is routed before the TLS server gets it.
 */
const HANDSHAKE_RECORD = 0x16
const CLIENT_HELLO = 0x01
const ALPN_EXTENSION = 0x0010

/** The offered protocols, or [] when the bytes are not a (complete) ClientHello with ALPN. */
export function offeredAlpnProtocols(data: Buffer): string[] {
  try {
    if (data[0] !== HANDSHAKE_RECORD || data[5] !== CLIENT_HELLO) return []
    let offset = 9 + 2 + 32 // record header (5), handshake header (4), client version, random
    offset += 1 + data[offset] // session id
    offset += 2 + data.readUInt16BE(offset) // cipher suites
    offset += 1 + data[offset] // compression methods
    const extensionsEnd = offset + 2 + data.readUInt16BE(offset)
    offset += 2
    while (offset + 4 <= extensionsEnd && offset + 4 <= data.length) {
      const type = data.readUInt16BE(offset)
      const length = data.readUInt16BE(offset + 2)
      offset += 4
      if (type === ALPN_EXTENSION) return readProtocolList(data.subarray(offset, offset + length))
      offset += length
    }
  } catch {
    // A truncated hello reads past the end: it offers nothing we can see.
  }
  return []
}

function readProtocolList(extension: Buffer): string[] {
  const protocols: string[] = []
  let offset = 2
  const end = Math.min(extension.length, 2 + extension.readUInt16BE(0))
  while (offset < end) {
    const length = extension[offset]
    protocols.push(extension.subarray(offset + 1, offset + 1 + length).toString('latin1'))
    offset += 1 + length
  }
  return protocols
}
