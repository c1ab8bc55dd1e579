/**
 * A small Kinesis JSON 1.1 client over HTTP/1.1 (or HTTPS, for an https:// endpoint) for Tributary's
 * own CLI (the AWS SDK stays a development dependency). Signs with SigV4 when credentials are given.
 * An HTTPS endpoint is trusted by the system's CAs, or by `ca` (the CLI passes AWS_CA_BUNDLE's file,
 * as the AWS CLI reads it).
 */
import http from 'node:http'
import https from 'node:https'
import { rootCertificates } from 'node:tls'
import { KinesisError, type KinesisErrorType } from './errors.js'
import { signSigV4, type Credentials } from './sigv4.js'

export interface KinesisClientOptions {
  endpoint: string
  region?: string
  credentials?: Credentials
  /** PEM certificates to trust for an https:// endpoint, besides the system's. */
  ca?: string | Buffer
}

export class KinesisClient {
  private readonly url: URL
  private readonly region: string
  private readonly credentials?: Credentials
  private readonly agent: http.Agent
  private readonly transport: typeof http | typeof https

  readonly endpoint: string

  constructor(o: KinesisClientOptions) {
    this.endpoint = o.endpoint
    this.url = new URL(o.endpoint)
    this.region = o.region ?? 'us-east-1'
    this.credentials = o.credentials
    const tls = this.url.protocol === 'https:'
    this.transport = tls ? https : http
    this.agent = tls ? new https.Agent({ keepAlive: true, maxSockets: 16, ...(o.ca ? { ca: [...rootCertificates, String(o.ca)] } : {}) }) : new http.Agent({ keepAlive: true, maxSockets: 16 })
  }

  async call<T = Record<string, unknown>>(action: string, body: object): Promise<T> {
    const { status, json, text } = await this.send('POST', '/', { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': `Kinesis_20131202.${action}` }, Buffer.from(JSON.stringify(body)))
    if (status === 200) return json as T
    const type = String(json.__type ?? `HTTP${status}`).split('#').pop() as KinesisErrorType
    throw new KinesisError(type, String(json.message ?? json.Message ?? text))
  }

  /** A request to one of the relay's own routes (checkpoints, admin), signed when credentials are set: the status and the JSON answer. */
  async request<T = Record<string, unknown>>(method: string, path: string, body?: object, headers: Record<string, string> = {}): Promise<{ status: number; json: T }> {
    const { status, json } = await this.send(method, path, { ...(body ? { 'content-type': 'application/json' } : {}), ...headers }, Buffer.from(body ? JSON.stringify(body) : ''))
    return { status, json: json as T }
  }

  /**
   * A REST-JSON call (the Kinesis Video APIs: `POST /listFragments` and the like), signed for
   * `service`; an error answer throws a KinesisError of the type AWS names in `x-amzn-errortype`.
   */
  async rest<T = Record<string, unknown>>(path: string, body: object, service = 'kinesisvideo'): Promise<T> {
    const { status, json, text, errorType } = await this.send('POST', path, { 'content-type': 'application/json' }, Buffer.from(JSON.stringify(body)), service)
    if (status === 200) return json as T
    const type = String(errorType ?? json.__type ?? `HTTP${status}`).split(':')[0]!.split('#').pop() as KinesisErrorType
    throw new KinesisError(type, String(json.message ?? json.Message ?? text))
  }

  /**
   * A REST-JSON call whose answer is a media body (GetClip): the body as a stream, its type and its
   * length when sent, once the status says it succeeded; an error answer throws as `rest` does.
   */
  async restStream(path: string, body: object, service = 'kinesisvideo'): Promise<{ contentType: string; length: number | undefined; body: http.IncomingMessage }> {
    const payload = Buffer.from(JSON.stringify(body))
    const headers: Record<string, string> = { host: this.url.host, 'content-type': 'application/json' }
    if (this.credentials) signSigV4({ method: 'POST', path, headers, body: payload }, this.credentials, this.region, service)
    const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
      const req = this.transport.request({ host: this.url.hostname, port: this.url.port || (this.transport === https ? 443 : 80), method: 'POST', path, headers: { ...headers, 'content-length': String(payload.length) }, agent: this.agent }, resolve)
      req.on('error', reject)
      req.end(payload)
    })
    if (res.statusCode !== 200) {
      const chunks: Buffer[] = []
      for await (const c of res) chunks.push(c as Buffer)
      const text = Buffer.concat(chunks).toString('utf8')
      let json: Record<string, unknown> = {}
      try { json = text ? JSON.parse(text) : {} } catch { /* non-JSON error body */ }
      const header = res.headers['x-amzn-errortype']
      const type = String((Array.isArray(header) ? header[0] : header) ?? json.__type ?? `HTTP${res.statusCode}`).split(':')[0]!.split('#').pop() as KinesisErrorType
      throw new KinesisError(type, String(json.message ?? json.Message ?? text))
    }
    const length = res.headers['content-length'] === undefined ? undefined : Number(res.headers['content-length'])
    return { contentType: String(res.headers['content-type'] ?? ''), length, body: res }
  }

  private send(method: string, path: string, extra: Record<string, string>, payload: Buffer, service = 'kinesis'): Promise<{ status: number; json: Record<string, unknown>; text: string; errorType?: string }> {
    const headers: Record<string, string> = { host: this.url.host, ...extra }
    if (this.credentials) signSigV4({ method, path, headers, body: payload }, this.credentials, this.region, service)
    return new Promise((resolve, reject) => {
      const req = this.transport.request({ host: this.url.hostname, port: this.url.port || (this.transport === https ? 443 : 80), method, path, headers: { ...headers, 'content-length': String(payload.length) }, agent: this.agent }, (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8')
          let json: Record<string, unknown> = {}
          try { json = text ? JSON.parse(text) : {} } catch { /* non-JSON error body */ }
          const errorType = res.headers['x-amzn-errortype']
          resolve({ status: res.statusCode ?? 0, json, text, errorType: Array.isArray(errorType) ? errorType[0] : errorType })
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
