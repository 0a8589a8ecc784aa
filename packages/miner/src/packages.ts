/**
 * `@cgn/miner/packages`: reading and packing DService packages, without the rest of the miner.
 * The node serves packages to miners and loads its DServices' descriptors; importing the package
 * root for that loaded the miner's HTTP client (undici, ~11 MB of the node's idle RSS) too.
 */
export { loadDServicePackage, type DServicePackage } from './dservice-package.js';
export { digestFiles, digestPackage } from './digest.js';
export { inspectArchive, packToFile, type ArchiveSummary, type PackResult } from './package-archive.js';
