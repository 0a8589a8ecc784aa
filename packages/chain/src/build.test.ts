import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { compile, findImport, GENERATED_DIR, generatedModules, readArtifacts, sourceHash } from './build.js';
import { SOURCE_HASH } from './generated/index.js';

describe('contract build', () => {
  it('has committed artifacts and generated ABIs matching the current sources (else: npm run build:contracts -w @cgn/chain)', () => {
    const a = readArtifacts();
    expect(a?.sourceHash).toBe(sourceHash());
    expect(SOURCE_HASH).toBe(sourceHash());
    for (const [file, text] of generatedModules(a!)) expect(fs.readFileSync(path.join(GENERATED_DIR, file), 'utf8'), file).toBe(text);
  });

  it('resolves OpenZeppelin imports from node_modules and refuses path escapes', () => {
    expect(findImport('@openzeppelin/contracts/utils/cryptography/MerkleProof.sol')).toHaveProperty('contents');
    expect(findImport('@openzeppelin/contracts/../../etc/passwd')).toHaveProperty('error');
  });

  it('compiles with solc-js, offline, to the committed bytecode', async () => {
    const fresh = await compile();
    const committed = readArtifacts()!;
    for (const [name, c] of Object.entries(fresh.contracts)) {
      expect(c.bytecode, name).toBe(committed.contracts[name as keyof typeof committed.contracts].bytecode);
      expect(c.abi, name).toEqual(committed.contracts[name as keyof typeof committed.contracts].abi);
    }
  }, 120_000);
});
