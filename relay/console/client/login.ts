/** The sign-in form: the admin token once, then the relay's session cookie. */
import { $ } from './common.js'

$('login').addEventListener('submit', (e) => {
  e.preventDefault()
  const error = $('login-error')
  error.textContent = ''
  fetch('/console/login', {
    method: 'POST', credentials: 'same-origin',
    headers: { 'content-type': 'application/json', 'x-tributary-console': '1' },
    body: JSON.stringify({ token: $<HTMLInputElement>('token').value }),
  }).then(async (r) => {
    if (r.status === 204) return location.reload()
    const j = (await r.json()) as { message?: string }
    error.textContent = j.message ?? `sign-in failed: HTTP ${r.status}`
  }, (err: Error) => { error.textContent = `sign-in failed: ${err.message}` })
})
