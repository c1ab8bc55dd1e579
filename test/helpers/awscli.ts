/**
 * The AWS CLI v2 for tests: finds one, and runs `aws kinesis …` against a relay with throwaway
 * credentials and no user configuration. Tests skip with `awsCliSkip` when none is installed (CI
 * installs Debian's `awscli`).
 */
import type { Test } from 'tap'
import { execFile, execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { tempDir } from './tmp.js'

/**
 * The first AWS CLI v2 found. Debian's lives in /usr/bin; a PATH may put an older v1 first (e.g. a
 * pip-installed one), which does not know `--cli-binary-format`, so each candidate's version is read.
 */
function findAwsV2(): { bin: string; version: string } | { skip: string } {
  const seen: string[] = []
  for (const bin of ['/usr/bin/aws', '/usr/local/bin/aws', 'aws']) {
    if (bin.startsWith('/') && !existsSync(bin)) continue
    let version: string
    try {
      version = execFileSync(bin, ['--version'], { encoding: 'utf8', timeout: 30_000, stdio: ['ignore', 'pipe', 'pipe'] }).trim()
    } catch {
      continue
    }
    if (/^aws-cli\/2\./.test(version)) return { bin, version }
    seen.push(`${bin}: ${version}`)
  }
  return { skip: seen.length ? `needs the AWS CLI v2 (apt-get install awscli); found only ${seen.join('; ')}` : 'the AWS CLI v2 is not installed (apt-get install awscli)' }
}

const found = findAwsV2()
/** The reason to skip, or false when an AWS CLI v2 is here. */
export const awsCliSkip: string | false = 'skip' in found ? found.skip : false
/** "using /usr/bin/aws: aws-cli/2.9.19 …", for a test file's comment. */
export const awsCliVersion = 'version' in found ? `using ${found.bin}: ${found.version}` : ''

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export interface AwsRun { code: number; stdout: string; stderr: string; json: any }

/** Runs `aws kinesis …` against `endpoint` with throwaway credentials and no user configuration. */
export function awsWith(t: Test, endpoint: string, creds: { id: string; secret: string }) {
  const home = tempDir(t, 'tributary-aws-')
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('AWS_')) env[k] = v
  Object.assign(env, {
    HOME: home,
    AWS_ACCESS_KEY_ID: creds.id,
    AWS_SECRET_ACCESS_KEY: creds.secret,
    AWS_DEFAULT_REGION: 'us-east-1',
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_CONFIG_FILE: join(home, 'config'),
    AWS_SHARED_CREDENTIALS_FILE: join(home, 'credentials'),
    AWS_PAGER: '',
    AWS_MAX_ATTEMPTS: '1',
  })
  return (...args: string[]): Promise<AwsRun> => new Promise((resolve) => {
    const bin = 'bin' in found ? found.bin : 'aws'
    execFile(bin, ['kinesis', ...args, '--endpoint-url', endpoint, '--output', 'json', '--cli-connect-timeout', '10', '--cli-read-timeout', '30'], { env, timeout: 60_000, encoding: 'utf8' }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0
      let json: unknown = null
      try { json = stdout.trim() ? JSON.parse(stdout) : null } catch { /* not JSON */ }
      resolve({ code, stdout, stderr, json })
    })
  })
}
