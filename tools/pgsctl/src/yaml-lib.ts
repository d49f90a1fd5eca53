/**
 * The yaml package, loaded on demand (it is a third of what a start would otherwise parse). Its
 * Node build is CommonJS, so in the bundle a dynamic import sees its exports under `default`.
 */
export type YamlLib = typeof import('yaml');

/** Imports the yaml package once. */
export async function importYaml(): Promise<YamlLib> {
  const mod = (await import('yaml')) as YamlLib & { default?: YamlLib };
  return typeof mod.stringify === 'function' ? mod : (mod.default as YamlLib);
}
