// RudderStack's JS SDK v3 with its plugins bundled in (the default build loads them from its CDN),
// for tests/browser/pages: window.RudderAnalytics.
import { RudderAnalytics } from '@rudderstack/analytics-js/bundled';

window.RudderAnalytics = RudderAnalytics;
