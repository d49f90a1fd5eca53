/** GET a JSON document from an app's ops or REST endpoint, with a short deadline. */

/** The status and parsed body of a GET; `body` is undefined when it was not JSON. */
export async function getJson<T>(url: string, timeoutMs = 2000): Promise<{ status: number; body: T | undefined }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  const text = await res.text();
  let body: T | undefined;
  try {
    body = JSON.parse(text) as T;
  } catch (err) {
    if (!(err instanceof SyntaxError)) throw err;
    body = undefined;
  }
  return { status: res.status, body };
}
