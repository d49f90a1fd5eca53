/**
 * The dashboard at /ui: static files from the package's ui/ folder (plain HTML, CSS and one ES
 * module, no build step), served with their content types and a strict Content-Security-Policy:
 * only this origin's script, style and fetch; no inline code, no frames, no other hosts. The page
 * holds no secret: it asks the operator for a bearer token and calls the REST API with it.
 */
import fs from 'node:fs';
import type http from 'node:http';
import path from 'node:path';

/** The folder of the page's files (the same from src/ and from dist/). */
export const UI_DIR = path.resolve(import.meta.dirname, '..', '..', 'ui');

const FILES: Readonly<Record<string, { file: string; type: string }>> = {
  '/ui': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/ui/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/ui/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/ui/app.css': { file: 'app.css', type: 'text/css; charset=utf-8' },
};

/** The policy every /ui answer carries. */
export const UI_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "connect-src 'self'",
  "img-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/** Answers GET/HEAD /ui, /ui/, /ui/app.js and /ui/app.css; false for any other path. */
export function uiHandler(dir = UI_DIR): (req: http.IncomingMessage, res: http.ServerResponse) => boolean {
  // Read once: the files are a few kilobytes and part of the installed package.
  const cache = new Map<string, Buffer>();
  return (req, res) => {
    const path_ = (req.url ?? '/').split('?')[0] ?? '/';
    const entry = FILES[path_];
    if (!entry && !path_.startsWith('/ui/')) return false;
    const headers = { 'content-security-policy': UI_CSP, 'x-content-type-options': 'nosniff', 'referrer-policy': 'no-referrer', 'cache-control': 'no-cache' };
    if (!entry) {
      res.writeHead(404, { ...headers, 'content-type': 'text/plain; charset=utf-8' });
      res.end(`not found: the dashboard is at /ui (files: ${Object.keys(FILES).join(', ')})\n`);
      return true;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { ...headers, allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' });
      res.end(`${req.method} is not allowed on ${path_}; allowed: GET, HEAD\n`);
      return true;
    }
    let body = cache.get(entry.file);
    if (!body) {
      try {
        body = fs.readFileSync(path.join(dir, entry.file));
      } catch (err) {
        res.writeHead(500, { ...headers, 'content-type': 'text/plain; charset=utf-8' });
        res.end(`the dashboard's file ${entry.file} is missing from ${dir} (${(err as Error).message}); reinstall the coordinator package\n`);
        return true;
      }
      cache.set(entry.file, body);
    }
    res.writeHead(200, { ...headers, 'content-type': entry.type, 'content-length': body.length });
    res.end(req.method === 'HEAD' ? undefined : body);
    return true;
  };
}

/** `rest` with the dashboard's files in front of it. */
export function withDashboard(
  rest: (req: http.IncomingMessage, res: http.ServerResponse) => Promise<boolean>,
): (req: http.IncomingMessage, res: http.ServerResponse) => Promise<boolean> {
  const ui = uiHandler();
  return async (req, res) => ui(req, res) || (await rest(req, res));
}
