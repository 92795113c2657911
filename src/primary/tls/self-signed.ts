/**
 * A self-signed certificate for hosts still waiting for theirs, so a client gets a clear
 * certificate error instead of a handshake that fails without a word.
 *
 * The primary must not stall on it, since every new TLS host gets one in the middle of a deploy.
 * One ECDSA P-256 key serves every stand-in (generated off the event loop by
 * `prepareStandInKey`, or on first use if that has not finished: a fraction of a millisecond,
 * where RSA-2048 took ~80 ms). The certificate is assembled with node-forge's DER encoder alone,
 * since loading all of node-forge holds the loop for 30-140 ms and its `asn1` part for ~4 ms,
 * and signed with node:crypto. A stand-in then costs well under a millisecond.
 */
import { generateKeyPair, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto'
import type { asn1 as Asn1Module } from 'node-forge'

const ECDSA_WITH_SHA256 = '1.2.840.10045.4.3.2'
const EC_PUBLIC_KEY = '1.2.840.10045.2.1'
const P256 = '1.2.840.10045.3.1.7'
const COMMON_NAME = '2.5.4.3'
const SUBJECT_ALT_NAME = '2.5.29.17'
/** Long enough for any order to succeed or be retried many times; renewed stand-ins are not needed. */
const VALIDITY_MS = 7 * 86_400_000

interface StandInKey {
  privateKey: KeyObject
  privatePem: string
  /** The uncompressed public point (0x04 || x || y) for the certificate's key info. */
  publicPoint: Buffer
}

let standInKey: StandInKey | undefined
let preparing: Promise<void> | undefined

/** Generates the stand-ins' key in the background; call it early, when TLS services exist. */
export function prepareStandInKey(): Promise<void> {
  preparing ??= new Promise((resolve) => {
    generateKeyPair('ec', { namedCurve: 'prime256v1' }, (err, publicKey, privateKey) => {
      if (!err) standInKey ??= toStandInKey(privateKey, publicKey)
      resolve()
    })
  })
  return preparing
}

export function createSelfSigned(hosts: readonly string[]): { cert: string; key: string } {
  if (!standInKey) {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' })
    standInKey = toStandInKey(privateKey, publicKey)
  }
  // Loaded on first use: most proxies never need a stand-in.
  const asn1 = require('node-forge/lib/asn1') as typeof Asn1Module
  const der = new DerBuilder(asn1)
  const name = der.seq(der.set(der.seq(der.oid(COMMON_NAME), der.utf8(`${hosts[0]} (mproxy: certificate pending)`))))
  const now = Date.now()
  const tbs = der.seq(
    der.explicit(0, der.integer(Buffer.from([2]))), // X.509 v3
    der.integer(serialNumber()),
    der.seq(der.oid(ECDSA_WITH_SHA256)),
    name,
    der.seq(der.time(new Date(now - 60_000)), der.time(new Date(now + VALIDITY_MS))),
    name,
    der.seq(der.seq(der.oid(EC_PUBLIC_KEY), der.oid(P256)), der.bitString(standInKey.publicPoint)),
    der.explicit(3, der.seq(der.seq(der.oid(SUBJECT_ALT_NAME), der.octetString(der.encode(der.seq(...hosts.map((host) => der.dnsName(host)))))))),
  )
  const tbsDer = der.encode(tbs)
  // ECDSA signatures from node:crypto are DER by default, as X.509 wants them.
  const signature = sign('sha256', tbsDer, standInKey.privateKey)
  const certDer = der.encode(der.seq(tbs, der.seq(der.oid(ECDSA_WITH_SHA256)), der.bitString(signature)))
  return { cert: toPem('CERTIFICATE', certDer), key: standInKey.privatePem }
}

// Private

/** The few ASN.1 values a certificate needs, on top of node-forge's encoder. */
class DerBuilder {
  readonly #asn1: typeof Asn1Module

  constructor(asn1: typeof Asn1Module) {
    this.#asn1 = asn1
  }

  seq(...items: Asn1Module.Asn1[]): Asn1Module.Asn1 {
    return this.#asn1.create(this.#asn1.Class.UNIVERSAL, this.#asn1.Type.SEQUENCE, true, items)
  }

  set(...items: Asn1Module.Asn1[]): Asn1Module.Asn1 {
    return this.#asn1.create(this.#asn1.Class.UNIVERSAL, this.#asn1.Type.SET, true, items)
  }

  oid(id: string): Asn1Module.Asn1 {
    return this.#asn1.create(this.#asn1.Class.UNIVERSAL, this.#asn1.Type.OID, false, this.#asn1.oidToDer(id).getBytes())
  }

  /** A positive integer given as big-endian bytes whose first bit is 0. */
  integer(bytes: Buffer): Asn1Module.Asn1 {
    return this.#asn1.create(this.#asn1.Class.UNIVERSAL, this.#asn1.Type.INTEGER, false, bytes.toString('binary'))
  }

  utf8(text: string): Asn1Module.Asn1 {
    return this.#asn1.create(this.#asn1.Class.UNIVERSAL, this.#asn1.Type.UTF8, false, Buffer.from(text, 'utf8').toString('binary'))
  }

  /** RFC 5280: UTCTime through 2049, GeneralizedTime from 2050. */
  time(date: Date): Asn1Module.Asn1 {
    return date.getUTCFullYear() < 2050
      ? this.#asn1.create(this.#asn1.Class.UNIVERSAL, this.#asn1.Type.UTCTIME, false, this.#asn1.dateToUtcTime(date))
      : this.#asn1.create(this.#asn1.Class.UNIVERSAL, this.#asn1.Type.GENERALIZEDTIME, false, this.#asn1.dateToGeneralizedTime(date))
  }

  bitString(bytes: Buffer): Asn1Module.Asn1 {
    // The leading byte counts the unused bits of the last one: none.
    return this.#asn1.create(this.#asn1.Class.UNIVERSAL, this.#asn1.Type.BITSTRING, false, `\x00${bytes.toString('binary')}`)
  }

  octetString(bytes: Buffer): Asn1Module.Asn1 {
    return this.#asn1.create(this.#asn1.Class.UNIVERSAL, this.#asn1.Type.OCTETSTRING, false, bytes.toString('binary'))
  }

  /** GeneralName's dNSName: [2] IMPLICIT IA5String. */
  dnsName(host: string): Asn1Module.Asn1 {
    return this.#asn1.create(this.#asn1.Class.CONTEXT_SPECIFIC, 2 as Asn1Module.Type, false, host)
  }

  explicit(tag: number, item: Asn1Module.Asn1): Asn1Module.Asn1 {
    return this.#asn1.create(this.#asn1.Class.CONTEXT_SPECIFIC, tag as Asn1Module.Type, true, [item])
  }

  encode(item: Asn1Module.Asn1): Buffer {
    return Buffer.from(this.#asn1.toDer(item).getBytes(), 'binary')
  }
}

/** Random and positive, so two stand-ins for the same name never share a serial. */
function serialNumber(): Buffer {
  const bytes = randomBytes(16)
  bytes[0] = (bytes[0] & 0x7f) | 0x40
  return bytes
}

function toPem(label: string, der: Buffer): string {
  const lines = der.toString('base64').match(/.{1,64}/g) ?? []
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`
}

function toStandInKey(privateKey: KeyObject, publicKey: KeyObject): StandInKey {
  const jwk = publicKey.export({ format: 'jwk' })
  return {
    privateKey,
    privatePem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicPoint: Buffer.concat([Buffer.from([4]), Buffer.from(jwk.x ?? '', 'base64url'), Buffer.from(jwk.y ?? '', 'base64url')]),
  }
}
