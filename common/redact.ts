/** Credentials out of text that is logged, shown or sent (camera URLs, broker URLs, config errors). */

/** Removes `user:password@` from every URL inside `text`. */
export function redactUrl(text: string): string {
  return text.replace(/([a-z][a-z0-9+.-]*:\/\/)[^/@\s]+@/gi, '$1***@');
}
