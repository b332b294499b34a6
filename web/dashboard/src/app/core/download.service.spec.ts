import { filenameFrom } from './download.service';

describe('filenameFrom', () => {
  it('reads plain and RFC 5987 filenames from Content-Disposition', () => {
    expect(filenameFrom('attachment; filename="export-1.csv"')).toBe('export-1.csv');
    expect(filenameFrom("attachment; filename*=UTF-8''r%C3%A9sum%C3%A9.jsonl")).toBe('résumé.jsonl');
    expect(filenameFrom(null)).toBeNull();
  });
});
