import { HttpClient } from '@angular/common/http';
import { inject, Injectable } from '@angular/core';
import { firstValueFrom } from 'rxjs';
import {
  AlertItem,
  ExportFormat,
  ExportJob,
  normalizeAlert,
  normalizeAlertList,
  normalizeExportJob,
  normalizeExportList,
  normalizeSnapshot,
  Snapshot,
} from './models';

/** Thin typed wrapper over the REST API of contract.md ("HTTP"). */
@Injectable({ providedIn: 'root' })
export class ApiService {
  private readonly http = inject(HttpClient);

  /** GET /api/dashboard for the viewer's zone (IANA) and period ("7d" | "30d" | "90d"). */
  async dashboard(tz?: string | null, period?: string | null): Promise<Snapshot> {
    const params: Record<string, string> = {};
    if (tz) params['tz'] = tz;
    if (period) params['period'] = period;
    return normalizeSnapshot(await firstValueFrom(this.http.get<unknown>('/api/dashboard', { params })));
  }

  async alerts(): Promise<AlertItem[]> {
    return normalizeAlertList(await firstValueFrom(this.http.get<unknown>('/api/alerts')));
  }

  async acknowledgeAlert(id: string): Promise<AlertItem | null> {
    const res = await firstValueFrom(this.http.post<unknown>(`/api/alerts/${encodeURIComponent(id)}/acknowledge`, {}));
    return res && typeof res === 'object' ? normalizeAlert(res) : null;
  }

  async createExport(from: string, to: string, format: ExportFormat): Promise<ExportJob> {
    const res = await firstValueFrom(this.http.post<unknown>('/api/exports', { from, to, format }));
    return normalizeExportJob(res, { from, to, format, status: 'pending' });
  }

  async exportJob(id: string): Promise<ExportJob> {
    return normalizeExportJob(await firstValueFrom(this.http.get<unknown>(`/api/exports/${encodeURIComponent(id)}`)), {
      jobId: id,
    });
  }

  /** GET /api/exports (list); callers treat a 404/405 as "not offered by this server". */
  async exports(): Promise<ExportJob[]> {
    return normalizeExportList(await firstValueFrom(this.http.get<unknown>('/api/exports')));
  }
}
