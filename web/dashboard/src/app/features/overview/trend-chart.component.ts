import {
  afterNextRender,
  ChangeDetectionStrategy,
  Component,
  effect,
  ElementRef,
  input,
  OnDestroy,
  viewChild,
} from '@angular/core';
import {
  BarController,
  BarElement,
  CategoryScale,
  Chart,
  Filler,
  LinearScale,
  LineController,
  LineElement,
  PointElement,
  Tooltip,
} from 'chart.js';

// Register only what the two trend charts use (keeps the bundle small).
Chart.register(LineController, BarController, LineElement, BarElement, PointElement, LinearScale, CategoryScale, Filler, Tooltip);

export interface ChartSeries {
  label: string;
  data: (number | null)[];
  color: string;
  kind: 'line' | 'bar';
  /** right-hand axis (e.g. minutes vs. counts) */
  secondary?: boolean;
}

/** A chart.js line/bar chart fed by signal inputs; updates in place without re-creating. */
@Component({
  selector: 'app-trend-chart',
  changeDetection: ChangeDetectionStrategy.OnPush,
  template: `<div class="chart"><canvas #canvas [attr.aria-label]="ariaLabel()" role="img"></canvas></div>`,
})
export class TrendChartComponent implements OnDestroy {
  readonly labels = input.required<string[]>();
  readonly series = input.required<ChartSeries[]>();
  readonly ariaLabel = input('trend chart');
  private readonly canvas = viewChild.required<ElementRef<HTMLCanvasElement>>('canvas');
  private chart: Chart | null = null;
  private ready = false;

  constructor() {
    afterNextRender(() => {
      this.ready = true;
      this.render();
    });
    effect(() => {
      // Track inputs; render once the canvas exists.
      this.labels();
      this.series();
      if (this.ready) this.render();
    });
  }

  ngOnDestroy(): void {
    this.chart?.destroy();
    this.chart = null;
  }

  private render(): void {
    const labels = this.labels();
    const datasets = this.series().map((s) => ({
      type: s.kind,
      label: s.label,
      data: s.data,
      borderColor: s.color,
      backgroundColor: s.kind === 'bar' ? `${s.color}cc` : `${s.color}22`,
      fill: s.kind === 'line',
      tension: 0.3,
      pointRadius: 0,
      borderWidth: 2,
      borderRadius: s.kind === 'bar' ? 3 : 0,
      yAxisID: s.secondary ? 'y1' : 'y',
    }));
    if (this.chart) {
      this.chart.data.labels = labels;
      this.chart.data.datasets = datasets as never;
      this.chart.update('none');
      return;
    }
    const ctx = this.canvas().nativeElement.getContext?.('2d');
    if (!ctx) return; // no canvas support (e.g. jsdom): the tables still show the numbers
    const hasSecondary = this.series().some((s) => s.secondary);
    this.chart = new Chart(ctx, {
      type: 'bar',
      data: { labels, datasets: datasets as never },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        interaction: { mode: 'index', intersect: false },
        plugins: { legend: { display: false }, tooltip: { enabled: true } },
        scales: {
          x: { grid: { display: false }, ticks: { maxRotation: 0, autoSkipPadding: 12, color: '#6b7280' } },
          y: { beginAtZero: true, grid: { color: '#eef0f4' }, ticks: { precision: 0, color: '#6b7280' } },
          ...(hasSecondary
            ? { y1: { position: 'right' as const, beginAtZero: true, grid: { display: false }, ticks: { color: '#6b7280' } } }
            : {}),
        },
      },
    });
  }
}
