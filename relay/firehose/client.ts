/**
 * A small Firehose JSON 1.1 client for Tributary's own CLI (the AWS SDK stays a development
 * dependency): signs with SigV4 for `firehose` when credentials are given; an error answer throws a
 * FirehoseError of the type the relay named.
 */
import http from 'node:http'
import https from 'node:https'
import { rootCertificates } from 'node:tls'
import { AMZ_JSON } from '../kinesis/protocol.js'
import { signSigV4, type Credentials } from '../kinesis/sigv4.js'
import { FIREHOSE_TARGET_PREFIX } from './protocol.js'
import { FirehoseError, type FirehoseErrorType } from './errors.js'

export interface FirehoseClientOptions {
  endpoint: string
  region?: string
  credentials?: Credentials
  /** PEM certificates to trust for an https:// endpoint, besides the system's. */
  ca?: string | Buffer
}

export class FirehoseClient {
  private readonly url: URL
  private readonly region: string
  private readonly credentials?: Credentials
  private readonly agent: http.Agent
  private readonly transport: typeof http | typeof https

  constructor(o: FirehoseClientOptions) {
    this.url = new URL(o.endpoint)
    this.region = o.region ?? 'us-east-1'
    this.credentials = o.credentials
    const tls = this.url.protocol === 'https:'
    this.transport = tls ? https : http
    this.agent = tls ? new https.Agent({ keepAlive: true, ...(o.ca ? { ca: [...rootCertificates, String(o.ca)] } : {}) }) : new http.Agent({ keepAlive: true })
  }

  async call<T = Record<string, unknown>>(action: string, body: object): Promise<T> {
    const payload = Buffer.from(JSON.stringify(body))
    const headers: Record<string, string> = { host: this.url.host, 'content-type': AMZ_JSON, 'x-amz-target': `${FIREHOSE_TARGET_PREFIX}${action}` }
    if (this.credentials) signSigV4({ method: 'POST', path: '/', headers, body: payload }, this.credentials, this.region, 'firehose')
    const { status, text } = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = this.transport.request({
        host: this.url.hostname, port: this.url.port || (this.transport === https ? 443 : 80), method: 'POST', path: '/',
        headers: { ...headers, 'content-length': String(payload.length) }, agent: this.agent,
      }, (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }))
        res.on('error', reject)
      })
      req.on('error', reject)
      req.end(payload)
    })
    let json: Record<string, unknown> = {}
    try { json = text ? JSON.parse(text) : {} } catch { /* a non-JSON answer: reported by its text below */ }
    if (status === 200) return json as T
    const type = String(json.__type ?? `HTTP${status}`).split('#').pop() as FirehoseErrorType
    throw new FirehoseError(type, String(json.message ?? json.Message ?? text), status)
  }

  close(): void {
    this.agent.destroy()
  }
}
