import { expect } from "bun:test";

const GOLDEN_DIR = `${import.meta.dir}/../golden`;

/** Compare with test/golden/<name>; `UPDATE_GOLDEN=1 bun test` rewrites the files (review the diff). */
export async function expectGolden(name: string, actual: string): Promise<void> {
  const file = Bun.file(`${GOLDEN_DIR}/${name}`);
  if (process.env.UPDATE_GOLDEN === "1") await Bun.write(file, actual);
  expect(actual).toBe(await file.text());
}
