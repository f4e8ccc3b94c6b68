import { writeFileSync } from 'node:fs';
import { PROMETHEUS_RULE_FILE, prometheusRuleFromAlerts } from './deploy-support';

// Writes deploy/prometheus/prometheusrule.yaml from deploy/prometheus/alerts.yml (the one source of the rules).
writeFileSync(PROMETHEUS_RULE_FILE, prometheusRuleFromAlerts());
console.log(`wrote ${PROMETHEUS_RULE_FILE}`);
