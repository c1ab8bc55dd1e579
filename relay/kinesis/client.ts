/**
 * A small Kinesis JSON 1.1 client over HTTP/1.1 for Tributary's own CLI (the AWS SDK stays a
 * development dependency). Signs with SigV4 when credentials are given.
 */
import http from 'node:http'
import { KinesisError, type KinesisErrorType } from './errors.js'
import { signSigV4, type Credentials } from './sigv4.js'

export interface KinesisClientOptions {
  endpoint: string
  region?: string
  credentials?: Credentials
}

export class KinesisClient {
  private readonly url: URL
  private readonly region: string
  private readonly credentials?: Credentials
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 16 })

  readonly endpoint: string

  constructor(o: KinesisClientOptions) {
    this.endpoint = o.endpoint
    this.url = new URL(o.endpoint)
    this.region = o.region ?? 'us-east-1'
    this.credentials = o.credentials
  }

  call<T = Record<string, unknown>>(action: string, body: object): Promise<T> {
    const payload = Buffer.from(JSON.stringify(body))
    const headers: Record<string, string> = {
      host: this.url.host,
      'content-type': 'application/x-amz-json-1.1',
      'x-amz-target': `Kinesis_20131202.${action}`,
    }
    if (this.credentials) signSigV4({ method: 'POST', path: '/', headers, body: payload }, this.credentials, this.region, 'kinesis')
    return new Promise((resolve, reject) => {
      const req = http.request({ host: this.url.hostname, port: this.url.port || 80, method: 'POST', path: '/', headers: { ...headers, 'content-length': String(payload.length) }, agent: this.agent }, (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8')
          let parsed: Record<string, unknown> = {}
          try { parsed = text ? JSON.parse(text) : {} } catch { /* non-JSON error body */ }
          if (res.statusCode === 200) return resolve(parsed as T)
          const type = String(parsed.__type ?? `HTTP${res.statusCode}`).split('#').pop() as KinesisErrorType
          reject(new KinesisError(type, String(parsed.message ?? parsed.Message ?? text)))
        })
        res.on('error', reject)
      })
      req.on('error', reject)
      req.end(payload)
    })
  }

  close(): void {
    this.agent.destroy()
  }
}
