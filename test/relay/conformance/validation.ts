/**
 * Class: validation (issue 16). Rows are added as the relay is made to answer as AWS does.
 */
import type { Row } from './rows.js'

export const rows: Row[] = []
