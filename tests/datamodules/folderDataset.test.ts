import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MisconfigurationError } from '../../core/errors.js';
import { formatScanSummary, parseCaptions, scanImageTextFolder } from '../../datamodules/folderDataset.js';
import { put, removeDir, tempDir } from './helpers.js';

// The scan never decodes images, so empty files stand in for them here.
describe('scanImageTextFolder pairing rules', () => {
  let root: string;
  beforeEach(async () => {
    root = await tempDir();
  });
  afterEach(async () => {
    await removeDir(root);
  });

  it('pairs by stem across nested and different subfolders, sorted by image path', async () => {
    await put(root, 'a/b/img1.jpg');
    await put(root, 'x/img1.txt', 'a cat\n');
    await put(root, 'img2.png');
    await put(root, 'img2.txt', 'a dog');
    await put(root, 'deep/er/still/img0.webp');
    await put(root, 'caps/img0.txt', 'a bird');
    const lines: string[] = [];
    const { pairs, report } = await scanImageTextFolder(root, { log: (l) => lines.push(l) });
    expect(pairs.map((p) => path.relative(root, p.image))).toEqual(['a/b/img1.jpg', 'deep/er/still/img0.webp', 'img2.png']);
    expect(pairs.map((p) => path.relative(root, p.captionFile))).toEqual(['x/img1.txt', 'caps/img0.txt', 'img2.txt']);
    expect(pairs.map((p) => p.captions)).toEqual([['a cat'], ['a bird'], ['a dog']]);
    expect(report.pairs).toBe(3);
    expect(report.imageFiles).toBe(3);
    expect(report.captionFiles).toBe(3);
    expect(lines).toEqual([formatScanSummary(report)]);
    expect(lines[0]).toContain('3 image/caption pairs');
  });

  it('matches extensions case-insensitively (.JPG, .Jpeg, .TXT) and ignores other files', async () => {
    await put(root, 'one.JPG');
    await put(root, 'one.txt', 'x');
    await put(root, 'two.Jpeg');
    await put(root, 'two.TXT', 'y');
    await put(root, 'three.gif');
    await put(root, 'sub/three.txt', 'z');
    await put(root, 'four.tiff');
    await put(root, 'four.txt', 'w');
    await put(root, 'notes.md', 'ignored');
    await put(root, 'notes.json', '{}');
    const { pairs, report } = await scanImageTextFolder(root, { log: null });
    expect(pairs.map((p) => p.stem).sort()).toEqual(['four', 'one', 'three', 'two']);
    expect(report.imageFiles).toBe(4);
    expect(report.unpairedImages).toEqual([]);
    expect(report.unpairedCaptions).toEqual([]);
  });

  it('reports unpaired images and unpaired captions', async () => {
    await put(root, 'ok.png');
    await put(root, 'ok.txt', 'fine');
    await put(root, 'lonely/pic.jpg');
    await put(root, 'orphan.txt', 'no image');
    const { pairs, report } = await scanImageTextFolder(root, { log: null });
    expect(pairs.map((p) => p.stem)).toEqual(['ok']);
    expect(report.unpairedImages).toEqual(['lonely/pic.jpg']);
    expect(report.unpairedCaptions).toEqual(['orphan.txt']);
    expect(formatScanSummary(report)).toContain('1 unpaired images, 1 unpaired captions');
  });

  it('reports and skips stems claimed by two images or two caption files', async () => {
    await put(root, 'a/dup.jpg');
    await put(root, 'b/dup.png');
    await put(root, 'dup.txt', 'which image?');
    await put(root, 'twocap.jpg');
    await put(root, 'x/twocap.txt', 'one');
    await put(root, 'y/twocap.txt', 'two');
    await put(root, 'good.bmp');
    await put(root, 'good.txt', 'good');
    const { pairs, report } = await scanImageTextFolder(root, { log: null });
    expect(pairs.map((p) => p.stem)).toEqual(['good']);
    expect(report.duplicateStems).toEqual([
      { stem: 'dup', images: ['a/dup.jpg', 'b/dup.png'], captions: ['dup.txt'] },
      { stem: 'twocap', images: ['twocap.jpg'], captions: ['x/twocap.txt', 'y/twocap.txt'] },
    ]);
    // Duplicates are reported once, not also as unpaired.
    expect(report.unpairedImages).toEqual([]);
    expect(report.unpairedCaptions).toEqual([]);
  });

  it('skips and counts empty and blank-only caption files', async () => {
    await put(root, 'e1.png');
    await put(root, 'e1.txt', '');
    await put(root, 'e2.png');
    await put(root, 'e2.txt', '  \n\r\n\t\n');
    await put(root, 'ok.png');
    await put(root, 'ok.txt', '\nfirst\n\n  second  \r\nthird');
    const { pairs, report } = await scanImageTextFolder(root, { log: null });
    expect(pairs.map((p) => p.stem)).toEqual(['ok']);
    expect(pairs[0]!.captions).toEqual(['first', 'second', 'third']);
    expect(report.emptyCaptions).toEqual(['e1.txt', 'e2.txt']);
    expect(formatScanSummary(report)).toContain('2 empty caption files skipped');
  });

  it('a stem is the name without its last suffix, as Python Path.stem', async () => {
    await put(root, 'photo.final.jpg');
    await put(root, 'photo.final.txt', 'dots');
    await put(root, 'photo.txt', 'different stem');
    const { pairs, report } = await scanImageTextFolder(root, { log: null });
    expect(pairs.map((p) => p.stem)).toEqual(['photo.final']);
    expect(report.unpairedCaptions).toEqual(['photo.txt']);
  });

  it('missing folder, a file, and a folder without pairs are MisconfigurationErrors naming the flag', async () => {
    const missing = path.join(root, 'nope');
    await expect(scanImageTextFolder(missing, { log: null })).rejects.toThrow(MisconfigurationError);
    await expect(scanImageTextFolder(missing, { log: null })).rejects.toThrow(/`--folder`.*nope.*does not exist/);
    const file = await put(root, 'file.txt', 'x');
    await expect(scanImageTextFolder(file, { log: null, flag: '--val_folder' })).rejects.toThrow(/`--val_folder`.*not a folder/);
    await put(root, 'only.png');
    await expect(scanImageTextFolder(root, { log: null })).rejects.toThrow(/no usable image\/caption pairs/);
  });
});

describe('parseCaptions', () => {
  it('one caption per line, blank lines ignored, BOM and CR removed', () => {
    expect(parseCaptions('\uFEFFa\r\n\r\nb\n   \nc  ')).toEqual(['a', 'b', 'c']);
    expect(parseCaptions('')).toEqual([]);
  });
});
