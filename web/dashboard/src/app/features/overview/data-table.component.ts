import { ChangeDetectionStrategy, Component, input } from '@angular/core';
import { DASH } from '../../core/format';

export interface Column {
  label: string;
  /** right-aligned number column */
  num?: boolean;
}

export interface Cell {
  text: string;
  mono?: boolean;
  /** a badge after the text */
  tag?: { text: string; kind: 'ok' | 'warn' | 'new' | 'plain'; title?: string; testid?: string };
}

export interface Row {
  key: string;
  /** data-testid of the row */
  testid: string;
  /** optional data-* attribute value (e.g. the tool of a row) */
  data?: string;
  cells: Cell[];
}

/**
 * One table of the overview: rows already formatted by the caller. `rows` null means the server
 * did not send the data (an older server): the table then shows an em dash, not "nothing".
 */
@Component({
  selector: 'app-data-table',
  changeDetection: ChangeDetectionStrategy.OnPush,
  template: `
    <div class="table-wrap">
      <table class="table" [attr.data-testid]="testid()">
        <thead>
          <tr>
            @for (c of columns(); track $index) {
              <th [class.num]="c.num">{{ c.label }}</th>
            }
          </tr>
        </thead>
        <tbody>
          @if (rows(); as list) {
            @for (r of list; track r.key) {
              <tr [attr.data-testid]="r.testid" [attr.data-item]="r.data ?? null">
                @for (c of r.cells; track $index) {
                  <td [class.num]="columns()[$index]?.num" [class.mono]="c.mono">
                    {{ c.text }}
                    @if (c.tag; as t) {
                      <span class="tag tag--{{ t.kind }}" [attr.title]="t.title ?? null" [attr.data-testid]="t.testid ?? null">{{ t.text }}</span>
                    }
                  </td>
                }
              </tr>
            } @empty {
              <tr><td class="empty" [attr.colspan]="columns().length">{{ empty() }}</td></tr>
            }
          } @else {
            <tr><td class="empty" [attr.colspan]="columns().length">{{ dash }}</td></tr>
          }
        </tbody>
      </table>
    </div>
  `,
})
export class DataTableComponent {
  readonly testid = input.required<string>();
  readonly columns = input.required<Column[]>();
  readonly rows = input.required<Row[] | null>();
  /** text when the list is empty */
  readonly empty = input('No data yet.');
  readonly dash = DASH;
}
