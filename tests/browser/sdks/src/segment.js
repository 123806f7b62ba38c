// Segment's analytics.js 2.0 as the npm package ships it, for tests/browser/pages: window.AnalyticsBrowser.
import { AnalyticsBrowser } from '@segment/analytics-next';

window.AnalyticsBrowser = AnalyticsBrowser;
