// Translation tables: zh-CN (default) and English. Every visible string goes through `t`.

const tables = {
  'zh-CN': {
    app_title: 'OneKey 一键通调度台', app_short: '一键通志愿者',
    login: '登录', logout: '退出', name: '用户名', password: '密码', phone_or_name: '手机号或姓名',
    login_failed: '登录失败', lang_toggle: 'English',
    nav_queue: '警情队列', nav_map: '地图', nav_fleet: '设备与值守', nav_reports: '报表', nav_admin: '管理',
    live: '实时', offline_stream: '实时连接中断，正在重连…', alarm_sounding: '有未确认的紧急警情',
    queue_empty: '暂无待处理警情',
    col_priority: '级别', col_kind: '类型', col_elder: '老人', col_age: '已过', col_status: '状态',
    col_sla_ack: '接警时限', col_sla_responder: '响应人时限', col_sla_scene: '到场时限',
    cat_emergency: '紧急', cat_service: '服务', cat_technical: '设备', cat_welfare: '关爱探访',
    st_new: '新警情', st_acknowledged: '已接警', st_dispatching: '派单中', st_accepted: '已接单', st_on_scene: '已到场', st_closed: '已结案',
    kind_sos: '一键呼救', kind_fall: '跌倒', kind_smoke: '烟感', kind_gas: '燃气', kind_inactivity: '长时间无活动',
    kind_low_battery: '低电量', kind_power_loss: '断电', kind_tamper: '防拆', kind_removal: '摘除', kind_missed_check_in: '未报平安',
    done: '已完成', breached: '超时',
    elder_record: '老人档案', photo: '照片', address: '地址', living: '居住情况', health_notes: '健康情况', medications: '用药',
    contacts: '紧急联系人', key_holder: '持钥匙', previous: '历史警情', none: '无',
    living_alone: '独居', living_empty_nest: '空巢', living_three_no: '三无', living_with_family: '与家人同住',
    device: '设备', protocol: '协议', battery: '电量', last_heartbeat: '最后心跳', signal: '信号', model: '型号',
    timeline: '处置记录', actions: '操作', acknowledge: '接警确认', add_note: '添加备注', note: '备注',
    command: '设备指令', cmd_help_coming: '告知救助已出发', cmd_call_back: '回拨', cmd_locate: '定位',
    offer_to: '指派给', offer: '指派', escalate: '升级', false_alarm: '标记误报', close: '结案', outcome: '结果',
    out_resolved: '已现场处置', out_emergency_services: '已转120/110/119', out_false_alarm: '误报',
    out_resolved_by_phone: '电话处置', out_service_completed: '服务已完成', out_duplicate: '重复警情',
    call_120: '如情况危急，请立即拨打 120 / 110', offers: '派单', responder: '响应人',
    offer_pending: '待响应', offer_accepted: '已接单', offer_arrived: '已到场', offer_completed: '已完成',
    offer_declined: '已拒绝', offer_expired: '已超时', offer_withdrawn: '已撤回',
    map: '地图', legend_elder: '老人', legend_offered: '已派单', legend_accepted: '已接单', legend_responder: '值守人员',
    fleet: '设备与值守', grid: '网格', online: '在线', silent: '失联', low_battery: '低电量', tamper: '防拆',
    total: '合计', on_duty: '在岗', uncovered: '无人值守', covered: '有人值守',
    reports: '报表', answer_time: '接警时长分布', target: '目标：97.5% ≤ 60 秒', within_target: '达标率',
    to_responder: '到响应人接单时长', to_scene: '到场时长', service_24h: '服务工单 24 小时完成率',
    false_alarm_rate: '各型号误报率', incidents_total: '警情总数', closed_total: '已结案', seconds: '秒',
    admin: '管理', elders: '老人', devices: '设备', responders: '响应人员', grids: '网格', operators: '操作员',
    import_csv: 'CSV 导入', import: '导入', imported: '已导入', created: '新增', existing: '已存在', errors: '错误',
    new_operator: '新建操作员', role: '角色', create: '创建', saved: '已保存',
    app_login: '志愿者登录', go_on_duty: '上岗（共享位置）', go_off_duty: '下岗', on_duty_now: '值守中', off_duty_now: '未值守',
    my_tasks: '我的任务', no_tasks: '暂无任务', accept: '接单', decline: '拒绝', arrived: '已到达', complete: '完成',
    completion_note: '处置说明', navigate: '导航', distance: '距离', key_safe_code: '钥匙盒密码', category: '类别',
    new_offer: '新任务', location_denied: '无法获取位置', error: '出错',
  },
  en: {
    app_title: 'OneKey dispatch console', app_short: 'OneKey volunteer',
    login: 'Log in', logout: 'Log out', name: 'User name', password: 'Password', phone_or_name: 'Phone or name',
    login_failed: 'Login failed', lang_toggle: '中文',
    nav_queue: 'Queue', nav_map: 'Map', nav_fleet: 'Fleet & coverage', nav_reports: 'Reports', nav_admin: 'Admin',
    live: 'Live', offline_stream: 'Live feed lost, reconnecting…', alarm_sounding: 'Unacknowledged emergency',
    queue_empty: 'No open incidents',
    col_priority: 'Priority', col_kind: 'Kind', col_elder: 'Elder', col_age: 'Age', col_status: 'Status',
    col_sla_ack: 'Acknowledge', col_sla_responder: 'Responder', col_sla_scene: 'On scene',
    cat_emergency: 'Emergency', cat_service: 'Service', cat_technical: 'Technical', cat_welfare: 'Welfare',
    st_new: 'New', st_acknowledged: 'Acknowledged', st_dispatching: 'Dispatching', st_accepted: 'Accepted', st_on_scene: 'On scene', st_closed: 'Closed',
    kind_sos: 'SOS', kind_fall: 'Fall', kind_smoke: 'Smoke', kind_gas: 'Gas', kind_inactivity: 'Inactivity',
    kind_low_battery: 'Low battery', kind_power_loss: 'Power loss', kind_tamper: 'Tamper', kind_removal: 'Removed', kind_missed_check_in: 'Missed check-in',
    done: 'Done', breached: 'Breached',
    elder_record: 'Elder record', photo: 'Photo', address: 'Address', living: 'Living situation', health_notes: 'Health notes', medications: 'Medications',
    contacts: 'Emergency contacts', key_holder: 'key holder', previous: 'Previous incidents', none: 'None',
    living_alone: 'Lives alone', living_empty_nest: 'Empty nest', living_three_no: 'No income or support', living_with_family: 'With family',
    device: 'Device', protocol: 'Protocol', battery: 'Battery', last_heartbeat: 'Last heartbeat', signal: 'Signal', model: 'Model',
    timeline: 'Timeline', actions: 'Actions', acknowledge: 'Acknowledge', add_note: 'Add note', note: 'Note',
    command: 'Device command', cmd_help_coming: 'Help is coming', cmd_call_back: 'Call back', cmd_locate: 'Locate',
    offer_to: 'Offer to', offer: 'Offer', escalate: 'Escalate', false_alarm: 'Mark false alarm', close: 'Close', outcome: 'Outcome',
    out_resolved: 'Resolved on scene', out_emergency_services: 'Handed to 120/110/119', out_false_alarm: 'False alarm',
    out_resolved_by_phone: 'Resolved by phone', out_service_completed: 'Service completed', out_duplicate: 'Duplicate',
    call_120: 'If life is at risk, call 120 / 110 now', offers: 'Offers', responder: 'Responder',
    offer_pending: 'Pending', offer_accepted: 'Accepted', offer_arrived: 'Arrived', offer_completed: 'Completed',
    offer_declined: 'Declined', offer_expired: 'Expired', offer_withdrawn: 'Withdrawn',
    map: 'Map', legend_elder: 'Elder', legend_offered: 'Offered', legend_accepted: 'Accepted', legend_responder: 'On duty',
    fleet: 'Fleet & coverage', grid: 'Grid', online: 'Online', silent: 'Silent', low_battery: 'Low battery', tamper: 'Tamper',
    total: 'Total', on_duty: 'On duty', uncovered: 'Nobody covering', covered: 'Covered',
    reports: 'Reports', answer_time: 'Answer time', target: 'Target: 97.5 % ≤ 60 s', within_target: 'Within target',
    to_responder: 'Time to responder', to_scene: 'Time to scene', service_24h: 'Service orders done within 24 h',
    false_alarm_rate: 'False-alarm rate per model', incidents_total: 'Incidents', closed_total: 'Closed', seconds: 's',
    admin: 'Administration', elders: 'Elders', devices: 'Devices', responders: 'Responders', grids: 'Grids', operators: 'Operators',
    import_csv: 'CSV import', import: 'Import', imported: 'Imported', created: 'created', existing: 'already there', errors: 'errors',
    new_operator: 'New operator', role: 'Role', create: 'Create', saved: 'Saved',
    app_login: 'Volunteer login', go_on_duty: 'Go on duty (share location)', go_off_duty: 'Go off duty', on_duty_now: 'On duty', off_duty_now: 'Off duty',
    my_tasks: 'My tasks', no_tasks: 'No tasks', accept: 'Accept', decline: 'Decline', arrived: 'Arrived', complete: 'Complete',
    completion_note: 'What was done', navigate: 'Navigate', distance: 'Distance', key_safe_code: 'Key-safe code', category: 'Category',
    new_offer: 'New task', location_denied: 'Location unavailable', error: 'Error',
  },
};

export const LANGS = Object.keys(tables);
let lang = localStorage.getItem('onekey.lang') || 'zh-CN';
if (!tables[lang]) lang = 'zh-CN';

/** The current language. */
export function currentLang() { return lang; }

/** Translates `key`; a missing key shows itself so that it is noticed. */
export function t(key) {
  return tables[lang][key] ?? tables['zh-CN'][key] ?? key;
}

/** Translates a value with a prefix (`st_new`, `kind_sos`…), falling back to the raw value. */
export function tv(prefix, value) {
  if (value == null) return '';
  const key = `${prefix}_${value}`;
  return tables[lang][key] ?? value;
}

/** Fills every `[data-i18n]` element under `root`. */
export function apply(root = document) {
  document.documentElement.lang = lang;
  for (const el of root.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll('[data-i18n-placeholder]')) el.placeholder = t(el.dataset.i18nPlaceholder);
}

/** Switches to the other language and re-renders through `onChange`. */
export function toggle(onChange) {
  lang = lang === 'zh-CN' ? 'en' : 'zh-CN';
  localStorage.setItem('onekey.lang', lang);
  apply();
  onChange?.();
}
