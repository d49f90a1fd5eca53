/**
 * Manifest text -> validated TenantManifests. YAML with any number of `---` separated documents, or
 * JSON (JSON is YAML 1.2, so one parser reads both; a JSON array holds several documents). Syntax
 * errors name the file, the document and the line.
 */
import type { YamlLib } from '../yaml-lib.js';
import type { TenantManifest } from './model.js';
import { ManifestError, validateDocument } from './validate.js';

/** Parses and validates the text of `file` (`-` for stdin). Empty documents are skipped. */
export function parseManifests(yaml: YamlLib, file: string, text: string): TenantManifest[] {
  const docs = yaml.parseAllDocuments(text, { prettyErrors: true, uniqueKeys: true });
  const list = Array.isArray(docs) ? docs : [docs];
  const out: TenantManifest[] = [];
  let index = 0;
  for (const doc of list) {
    index++;
    const source = { file, document: index };
    const problem = doc.errors[0];
    if (problem !== undefined) {
      const at = problem.linePos?.[0];
      throw new ManifestError(
        source,
        undefined,
        '',
        `not valid YAML or JSON${at ? ` at line ${at.line}, column ${at.col}` : ''}: ${problem.message.split('\n')[0] ?? ''}`,
      );
    }
    const value: unknown = doc.toJS({ maxAliasCount: 100 });
    if (value === null || value === undefined) continue;
    if (Array.isArray(value)) {
      // A JSON array (or a YAML sequence) of documents: number them within the file.
      for (const item of value) out.push(validateDocument(item, { file, document: index++ }));
      index--;
      continue;
    }
    out.push(validateDocument(value, source));
  }
  return out;
}
