import { HttpClient, HttpResponse } from '@angular/common/http';
import { inject, Injectable } from '@angular/core';
import { firstValueFrom } from 'rxjs';

/**
 * Downloads a file that needs the user's token as well as its signed URL (the export
 * download endpoint checks both: api/exports.py). A plain link cannot send
 * `Authorization`, and putting the JWT in the URL would leak it into history, so the
 * file is fetched with the bearer header and handed to the browser as a blob.
 */
@Injectable({ providedIn: 'root' })
export class DownloadService {
  private readonly http = inject(HttpClient);

  async download(url: string, fallbackName = 'export'): Promise<void> {
    const res: HttpResponse<Blob> = await firstValueFrom(this.http.get(url, { observe: 'response', responseType: 'blob' }));
    const name = filenameFrom(res.headers.get('Content-Disposition')) ?? fallbackName;
    const href = URL.createObjectURL(res.body ?? new Blob());
    const a = document.createElement('a');
    a.href = href;
    a.download = name;
    a.rel = 'noopener';
    document.body.appendChild(a);
    a.click();
    a.remove();
    // Give the browser time to start reading the blob before it is released.
    setTimeout(() => URL.revokeObjectURL(href), 60_000);
  }
}

/** `attachment; filename="x.csv"` / `filename*=UTF-8''x.csv` -> x.csv */
export function filenameFrom(header: string | null): string | null {
  if (!header) return null;
  const star = /filename\*\s*=\s*(?:UTF-8'')?([^;]+)/i.exec(header);
  if (star) {
    try {
      return decodeURIComponent(star[1].trim().replace(/^"|"$/g, ''));
    } catch {
      // fall through to the plain parameter
    }
  }
  const plain = /filename\s*=\s*"?([^";]+)"?/i.exec(header);
  return plain ? plain[1].trim() : null;
}
