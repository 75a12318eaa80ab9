// Base URLs of HTTP APIs the operator calls (Prometheus, Alertmanager), which may carry basic-auth credentials.

/**
 * "https://user:pass@host/path" -> the URL without its credentials (fetch refuses URLs that carry them, and
 * every error message would repeat the password) and the Basic Authorization header they stand for.
 */
export function withoutCredentials(url: string): { url: string; headers: Record<string, string> } {
  const u = new URL(url);
  if (!u.username && !u.password) return { url, headers: {} };
  const user = decodeURIComponent(u.username);
  const password = decodeURIComponent(u.password);
  u.username = "";
  u.password = "";
  return {
    url: u.toString(),
    headers: { authorization: `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}` },
  };
}
