import { HttpErrorResponse } from '@angular/common/http';
import { ChangeDetectionStrategy, Component, inject, OnInit, signal } from '@angular/core';
import { FormsModule } from '@angular/forms';
import { ApiService } from '../../core/api.service';
import { DashboardStore } from '../../core/dashboard.store';
import { DownloadService } from '../../core/download.service';
import { fmtDateTime } from '../../core/format';
import { ExportFormat } from '../../core/models';

function isoDate(d: Date): string {
  return d.toISOString().slice(0, 10);
}

/**
 * Request an export (POST /api/exports) and watch it finish: the ExportCompleted push
 * fills in the signed download link (RealtimeService); no polling.
 */
@Component({
  selector: 'app-exports',
  imports: [FormsModule],
  changeDetection: ChangeDetectionStrategy.OnPush,
  template: `
    <section class="card">
      <header class="card__head"><h2>New export</h2></header>
      <form class="export-form" data-testid="export-form" (ngSubmit)="request()">
        <label class="field"><span>From</span><input type="date" name="from" [(ngModel)]="from" required data-testid="export-from" /></label>
        <label class="field"><span>To</span><input type="date" name="to" [(ngModel)]="to" required data-testid="export-to" /></label>
        <label class="field">
          <span>Format</span>
          <select name="format" [(ngModel)]="format" data-testid="export-format">
            <option value="csv">CSV</option>
            <option value="jsonl">JSON Lines</option>
          </select>
        </label>
        <button type="submit" class="btn btn--primary" [disabled]="busy()" data-testid="export-submit">Request export</button>
      </form>
      @if (error()) {
        <p class="form-error" data-testid="export-error">{{ error() }}</p>
      }
    </section>

    <section class="card">
      <header class="card__head"><h2>Exports</h2></header>
      <div class="table-wrap">
        <table class="table" data-testid="exports-table">
          <thead><tr><th>Job</th><th>Range</th><th>Format</th><th>Status</th><th></th></tr></thead>
          <tbody>
            @for (j of jobs(); track j.jobId) {
              <tr data-testid="export-row" [attr.data-job-id]="j.jobId" [attr.data-status]="j.status">
                <td class="mono">{{ j.jobId }}</td>
                <td>{{ day(j.from) }} → {{ lastDay(j.to) }}</td>
                <td>{{ j.format ?? '' }}</td>
                <td><span class="tag tag--{{ j.downloadUrl ? 'ok' : j.status === 'failed' ? 'bad' : 'wait' }}">{{ j.status }}</span></td>
                <td>
                  @if (j.downloadUrl) {
                    <a class="btn btn--small" [href]="j.downloadUrl" (click)="download($event, j.jobId, j.downloadUrl)" data-testid="export-download">Download</a>
                  } @else if (j.error) {
                    <span class="muted">{{ j.error }}</span>
                  }
                </td>
              </tr>
            } @empty {
              <tr><td colspan="5" class="empty">No exports yet.</td></tr>
            }
          </tbody>
        </table>
      </div>
    </section>
  `,
})
export class ExportsComponent implements OnInit {
  private readonly api = inject(ApiService);
  private readonly store = inject(DashboardStore);
  private readonly dl = inject(DownloadService);
  readonly jobs = this.store.exports;
  readonly busy = signal(false);
  readonly error = signal<string | null>(null);
  from = isoDate(new Date(Date.now() - 7 * 86_400_000));
  to = isoDate(new Date());
  format: ExportFormat = 'csv';
  when = fmtDateTime;

  /** Inclusive day range as the user picked it ("to" is sent exclusive). */
  day(iso: string | null): string {
    return iso ? iso.slice(0, 10) : '';
  }

  /** An exclusive end at midnight UTC is shown as the previous (last included) day. */
  lastDay(iso: string | null): string {
    if (!iso) return '';
    const t = Date.parse(iso);
    if (Number.isNaN(t)) return iso;
    return new Date(t % 86_400_000 === 0 ? t - 86_400_000 : t).toISOString().slice(0, 10);
  }

  async ngOnInit(): Promise<void> {
    try {
      this.store.setExports(await this.api.exports());
    } catch {
      // GET /api/exports (list) is optional in the contract; jobs requested here still show.
    }
  }

  /**
   * Fetch with the bearer token (the endpoint wants token + signature). On failure
   * (e.g. 410: the signed link expired) ask the job again for a freshly signed link.
   */
  async download(ev: Event, jobId: string, url: string): Promise<void> {
    ev.preventDefault();
    this.error.set(null);
    try {
      await this.dl.download(url, `export-${jobId}`);
    } catch {
      try {
        const fresh = await this.api.exportJob(jobId);
        this.store.upsertExport(fresh);
        if (fresh.downloadUrl && fresh.downloadUrl !== url) await this.dl.download(fresh.downloadUrl, `export-${jobId}`);
        else this.error.set('The download failed.');
      } catch {
        this.error.set('The download failed.');
      }
    }
  }

  async request(): Promise<void> {
    if (!this.from || !this.to || this.from > this.to) {
      this.error.set('Choose a valid date range.');
      return;
    }
    this.busy.set(true);
    this.error.set(null);
    try {
      // Whole days in UTC. The API's "to" is exclusive; the picker's is inclusive: send the next midnight.
      const end = new Date(`${this.to}T00:00:00Z`);
      end.setUTCDate(end.getUTCDate() + 1);
      const job = await this.api.createExport(`${this.from}T00:00:00Z`, end.toISOString().replace('.000Z', 'Z'), this.format);
      this.store.upsertExport(job);
    } catch (e) {
      const status = e instanceof HttpErrorResponse ? e.status : 0;
      this.error.set(status === 403 ? 'Your role may not export data.' : 'The export could not be requested.');
    } finally {
      this.busy.set(false);
    }
  }
}
