import { main } from './cli.js'
import { TributaryError } from '../shared/errors.js'

main(process.argv.slice(2), process.env).catch((err: unknown) => {
  if (err instanceof TributaryError) console.error(`error: ${err.code}: ${err.message}`)
  else console.error(`error: ${(err as Error)?.message ?? err}`)
  process.exit(1)
})
