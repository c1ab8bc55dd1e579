/**
 * `tributary healthcheck`: asks this machine's relay for /healthz and exits 0 when it answers 200,
 * 1 otherwise (the container's HEALTHCHECK). Kept apart from the rest of the CLI so that it loads
 * nothing of the relay: Docker runs it every few seconds.
 */
import { request as httpRequest } from 'node:http'
import { request as httpsRequest } from 'node:https'
import { relaySchema } from '../../shared/config.js'

const TIMEOUT_MS = 2500

/** The relay's /healthz URL as its own settings place it: TRIBUTARY_HTTP_PORT, TLS when TRIBUTARY_HTTPS_CERT is set. */
function healthUrl(env: NodeJS.ProcessEnv, endpoint?: string): URL {
  if (endpoint) return new URL('/healthz', endpoint)
  const port = env.TRIBUTARY_HTTP_PORT || String(relaySchema.httpPort.default)
  return new URL(`${env.TRIBUTARY_HTTPS_CERT ? 'https' : 'http'}://127.0.0.1:${port}/healthz`)
}

/** The status and body of one GET of `url`; rejects when there is no answer within the timeout. */
function probe(url: URL): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    // The relay's own certificate is for its public name, not 127.0.0.1: a check of this machine's
    // own port does not verify it.
    const req = (url.protocol === 'https:' ? httpsRequest : httpRequest)(url, { rejectUnauthorized: false, timeout: TIMEOUT_MS }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => { if (body.length < 4096) body += chunk })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
    })
    req.on('timeout', () => req.destroy(new Error(`no answer within ${TIMEOUT_MS} ms`)))
    req.on('error', reject)
    req.end()
  })
}

async function main(): Promise<void> {
  const i = process.argv.indexOf('--endpoint')
  const url = healthUrl(process.env, i > 0 ? process.argv[i + 1] : undefined)
  try {
    const { status, body } = await probe(url)
    console.log(`${url.href} ${status} ${body.trim()}`)
    process.exitCode = status === 200 ? 0 : 1
  } catch (err) {
    console.log(`${url.href} ${(err as Error).message}`)
    process.exitCode = 1
  }
}

await main()
