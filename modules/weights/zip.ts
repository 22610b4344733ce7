/** The zip reader moved to core/zip.ts (datamodules read YFCC15M zips too); re-exported for weights code. */
export * from '../../core/zip.js';
