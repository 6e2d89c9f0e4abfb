//! A generated Jizhou district in the `onekey-dataset/1` format (the types live in the
//! `onekey-dataset` crate, shared with the server's import; see its documentation for the
//! geography and the format), deterministic from a seed.

pub use onekey_dataset::*;

/// SplitMix64: tiny, and stable forever, so a seed means the same dataset in every version.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// From a seed.
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x1234_9000_1234_9000)
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// One element.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

struct Street {
    code: &'static str,
    name: &'static str,
    roads: &'static [&'static str],
    communities: &'static [(&'static str, &'static str, f64, f64)],
}

/// Streets and communities from the article; centres are synthetic, west of the Gan river.
const STREETS: &[Street] = &[
    Street {
        code: "WS",
        name: "文山街道",
        roads: &["文山路", "井冈山大道", "阳明西路"],
        communities: &[
            ("SY", "思源社区", 27.1125, 114.9790),
            ("GM", "光明社区", 27.1082, 114.9815),
            ("XY", "西苑社区", 27.1060, 114.9700),
        ],
    },
    Street {
        code: "YS",
        name: "永叔街道",
        roads: &["永叔路", "中山西路", "沿江路"],
        communities: &[
            ("TPQ", "太平桥社区", 27.1170, 114.9855),
            ("GFP", "高峰坡社区", 27.1205, 114.9760),
        ],
    },
    Street {
        code: "XXQ",
        name: "习溪桥街道",
        roads: &["习溪桥路", "仁山坪路", "庐陵大道"],
        communities: &[
            ("CK", "仓口社区", 27.0990, 114.9830),
            ("MDX", "民德巷社区", 27.1015, 114.9760),
            ("XC", "新村社区", 27.0955, 114.9725),
        ],
    },
    Street {
        code: "BM",
        name: "北门街道",
        roads: &["北门路", "后河路", "吉州大道"],
        communities: &[
            ("BM", "北门社区", 27.1260, 114.9815),
            ("MPQ", "马铺前社区", 27.1235, 114.9880),
        ],
    },
    Street {
        code: "GN",
        name: "古南镇街道",
        roads: &["古南大道", "螺湖路", "保太巷"],
        communities: &[
            ("LH", "螺湖社区", 27.0890, 114.9800),
            ("BTX", "保太巷社区", 27.0925, 114.9870),
            ("TSX", "桃树下社区", 27.0860, 114.9735),
        ],
    },
    Street {
        code: "XQ",
        name: "兴桥镇",
        roads: &[],
        communities: &[
            ("HYC", "黄余村", 27.0650, 114.9350),
            ("GJC", "高家村", 27.0720, 114.9200),
        ],
    },
];

const SURNAMES: &[&str] = &[
    "刘", "胡", "李", "王", "陈", "罗", "曾", "肖", "彭", "郭", "周", "张", "欧阳", "萧", "黄",
    "吴", "杨", "邓", "谢", "钟", "朱", "康", "尹", "段", "邹", "龙", "袁", "严",
];
const ELDER_GIVEN_F: &[&str] = &[
    "秀英", "桂英", "玉兰", "淑珍", "凤英", "秀兰", "桂兰", "金凤", "冬梅", "细妹", "满秀", "春娥",
    "美华", "水莲",
];
const ELDER_GIVEN_M: &[&str] = &[
    "德明", "国华", "建国", "福生", "水根", "长根", "冬生", "春华", "火生", "光明", "振兴", "汉林",
    "庆华", "永福",
];
const YOUNG_GIVEN: &[&str] = &[
    "志强", "海燕", "晓东", "丽华", "建华", "文杰", "婷婷", "俊", "敏", "磊", "静", "涛", "慧",
    "斌", "雪梅", "小龙", "子涵", "思远", "佳怡", "宇航",
];
const CONDITIONS: &[&str] = &[
    "高血压",
    "2型糖尿病",
    "冠心病",
    "脑梗后遗症，右侧肢体无力",
    "行动不便，使用助行器",
    "听力差，请大声说话",
    "轻度认知障碍，易忘事",
    "骨质疏松，曾跌倒",
    "慢阻肺，冬季易发作",
    "白内障术后，视力差",
    "心房颤动",
];
const MEDICATIONS: &[&str] = &[
    "硝苯地平缓释片",
    "二甲双胍",
    "阿司匹林肠溶片",
    "阿托伐他汀钙片",
    "胰岛素（冰箱冷藏）",
    "速效救心丸（床头柜）",
    "沙丁胺醇气雾剂",
    "华法林",
    "钙尔奇D",
];
const FAR_CITIES: &[&str] = &[
    "广州", "深圳", "东莞", "上海", "南昌", "厦门", "杭州", "温州",
];

fn mobile(rng: &mut Rng) -> String {
    let prefix = *rng.pick(&[
        "139", "138", "137", "135", "136", "150", "151", "158", "159", "180", "187", "189", "133",
        "153", "177", "199",
    ]);
    format!("{prefix}0796{:04}", rng.below(10_000))
}

fn landline(rng: &mut Rng) -> String {
    format!("0796-8{:06}", rng.below(1_000_000))
}

fn person(rng: &mut Rng, given: &[&str]) -> String {
    format!("{}{}", rng.pick(SURNAMES), rng.pick(given))
}

/// 15-digit IMEI with a Luhn check digit (TAC prefix 86…).
fn imei(rng: &mut Rng) -> String {
    let mut digits: Vec<u32> = vec![8, 6];
    for _ in 0..12 {
        digits.push(rng.below(10) as u32);
    }
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            if i % 2 == 0 {
                let x = d * 2;
                if x > 9 { x - 9 } else { x }
            } else {
                d
            }
        })
        .sum();
    digits.push((10 - sum % 10) % 10);
    digits.iter().map(|d| char::from(b'0' + *d as u8)).collect()
}

fn hex_bytes(rng: &mut Rng, n: usize) -> String {
    let bytes: Vec<u8> = (0..n).map(|_| rng.next_u64() as u8).collect();
    hex::encode(bytes)
}

fn jitter(rng: &mut Rng, centre: f64, spread: f64) -> f64 {
    centre + (rng.unit() - 0.5) * 2.0 * spread
}

fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

struct Grid {
    code: String,
    street: &'static Street,
    community: &'static str,
    lat: f64,
    lon: f64,
}

/// Grid squares are about 250 m across.
const GRID_HALF: f64 = 0.0012;

/// Generates a dataset: `elders` elders (about one device each), `responders` responders besides
/// one grid worker per grid.
pub fn generate(elders: usize, responders: usize, seed: u64) -> Dataset {
    generate_shaped(elders, responders, seed, None)
}

/// Like [`generate`], with `grids_per_community` grids in each of the fifteen communities
/// (default: `elders / 60`, between 2 and 9). Jizhou's real 305 grids are about 20 each.
pub fn generate_shaped(
    elders: usize,
    responders: usize,
    seed: u64,
    grids_per_community: Option<usize>,
) -> Dataset {
    let mut rng = Rng::new(seed);
    let grids_per_community = grids_per_community
        .unwrap_or_else(|| (elders / 60).clamp(2, 9))
        .clamp(1, 60);
    let mut areas = vec![AreaRec {
        code: "JZ".into(),
        level: "district".into(),
        name: "吉州区".into(),
        parent: None,
        worker: None,
        boundary: vec![],
    }];
    let mut grids = Vec::new();
    let mut out_responders = Vec::new();
    for street in STREETS {
        let street_code = format!("JZ-{}", street.code);
        areas.push(AreaRec {
            code: street_code.clone(),
            level: "street".into(),
            name: street.name.into(),
            parent: Some("JZ".into()),
            worker: None,
            boundary: vec![],
        });
        for &(ccode, cname, clat, clon) in street.communities {
            let community_code = format!("{street_code}-{ccode}");
            areas.push(AreaRec {
                code: community_code.clone(),
                level: "community".into(),
                name: cname.into(),
                parent: Some(street_code.clone()),
                worker: None,
                boundary: vec![],
            });
            for g in 0..grids_per_community {
                // Grids tile a block around the community centre, 3 wide (5 for many grids).
                let wide = if grids_per_community > 9 { 5 } else { 3 };
                let (row, col) = (
                    (g / wide) as f64 - (wide / 2) as f64,
                    (g % wide) as f64 - (wide / 2) as f64,
                );
                let lat = clat + row * 2.0 * GRID_HALF;
                let lon = clon + col * 2.0 * GRID_HALF;
                let code = format!("{community_code}-{:02}", g + 1);
                let worker_ref = format!("R{:04}", out_responders.len() + 1);
                out_responders.push(ResponderRec {
                    reference: worker_ref.clone(),
                    name: person(&mut rng, YOUNG_GIVEN),
                    phone: mobile(&mut rng),
                    kind: "grid_worker".into(),
                    team: Some(format!("{cname}网格站")),
                    skills: vec!["first_aid".into(), "visit".into()],
                    grid: Some(code.clone()),
                    home_lat: round6(jitter(&mut rng, lat, GRID_HALF)),
                    home_lon: round6(jitter(&mut rng, lon, GRID_HALF)),
                    max_tasks: 2,
                    shifts: Vec::new(),
                    password: None,
                });
                areas.push(AreaRec {
                    code: code.clone(),
                    level: "grid".into(),
                    name: format!("{cname}第{}网格", g + 1),
                    parent: Some(community_code.clone()),
                    worker: Some(worker_ref),
                    boundary: vec![
                        [round6(lat - GRID_HALF), round6(lon - GRID_HALF)],
                        [round6(lat - GRID_HALF), round6(lon + GRID_HALF)],
                        [round6(lat + GRID_HALF), round6(lon + GRID_HALF)],
                        [round6(lat + GRID_HALF), round6(lon - GRID_HALF)],
                    ],
                });
                grids.push(Grid {
                    code,
                    street,
                    community: cname,
                    lat,
                    lon,
                });
            }
        }
    }

    for i in 0..responders {
        let grid = &grids[rng.below(grids.len() as u64) as usize];
        let roll = rng.unit();
        let (kind, team, skills, name, max_tasks): (&str, String, Vec<&str>, String, i64) =
            if roll < 0.55 {
                let team = match rng.below(4) {
                    0 => "七彩义工之家".to_string(),
                    1 if grid.community == "太平桥社区" => {
                        format!("太平桥社区志愿者第{}队", rng.below(26) + 1)
                    }
                    _ => format!("{}志愿服务队", grid.community),
                };
                let skills = if rng.chance(0.3) {
                    vec!["first_aid", "visit"]
                } else {
                    vec!["visit", "escort"]
                };
                ("volunteer", team, skills, person(&mut rng, YOUNG_GIVEN), 1)
            } else if roll < 0.67 {
                (
                    "social_worker",
                    format!("{}社工站", grid.street.name),
                    vec!["visit", "emotional_care", "first_aid"],
                    person(&mut rng, YOUNG_GIVEN),
                    2,
                )
            } else if roll < 0.82 {
                (
                    "nursing_student",
                    "井冈山大学护理学院".to_string(),
                    vec!["nursing", "first_aid", "health_consultation"],
                    person(&mut rng, YOUNG_GIVEN),
                    1,
                )
            } else if roll < 0.88 {
                (
                    "family",
                    format!("{}邻里互助", grid.community),
                    vec!["key_holder", "visit"],
                    person(&mut rng, YOUNG_GIVEN),
                    1,
                )
            } else if roll < 0.94 {
                const ORGS: &[(&str, &[&str])] = &[
                    ("红杜鹃家政", &["housekeeping", "daily_care"]),
                    ("吉州区日间照料中心", &["daily_care", "nursing"]),
                    ("12343便民服务平台", &["housekeeping", "repairs"]),
                    ("心连心艺术团", &["emotional_care"]),
                ];
                let (org, skills) = *rng.pick(ORGS);
                let skills = skills.to_vec();
                (
                    "provider",
                    org.to_string(),
                    skills,
                    format!("{org}（{}）", grid.community),
                    5,
                )
            } else {
                (
                    "carer",
                    "吉安信息化养老服务中心".to_string(),
                    vec!["nursing", "daily_care", "first_aid"],
                    person(&mut rng, YOUNG_GIVEN),
                    2,
                )
            };
        let spread = if kind == "provider" { 0.01 } else { 0.003 };
        out_responders.push(ResponderRec {
            reference: format!("R{:04}", grids.len() + i + 1),
            name,
            phone: mobile(&mut rng),
            kind: kind.into(),
            team: Some(team),
            skills: skills.into_iter().map(String::from).collect(),
            grid: Some(grid.code.clone()),
            home_lat: round6(jitter(&mut rng, grid.lat, spread)),
            home_lon: round6(jitter(&mut rng, grid.lon, spread)),
            max_tasks,
            shifts: Vec::new(),
            password: None,
        });
    }

    let mut out_elders = Vec::with_capacity(elders);
    let mut homes = std::collections::HashSet::new();
    let mut devices = Vec::with_capacity(elders);
    for i in 0..elders {
        let grid = &grids[rng.below(grids.len() as u64) as usize];
        let female = rng.chance(0.6);
        let surname = rng.pick(SURNAMES).to_string();
        let name = format!(
            "{surname}{}",
            rng.pick(if female { ELDER_GIVEN_F } else { ELDER_GIVEN_M })
        );
        let roll = rng.unit();
        let living = if roll < 0.45 {
            "alone"
        } else if roll < 0.80 {
            "empty_nest"
        } else if roll < 0.90 {
            "three_no"
        } else {
            "with_family"
        };
        let address = if grid.street.roads.is_empty() {
            format!(
                "吉州区{}{}{}组{}号",
                grid.street.name,
                grid.community,
                rng.below(9) + 1,
                rng.below(60) + 1
            )
        } else {
            format!(
                "吉州区{}{}{}{}号{}栋{}单元{}{:02}室",
                grid.street.name,
                grid.community,
                rng.pick(grid.street.roads),
                rng.below(200) + 1,
                rng.below(12) + 1,
                rng.below(3) + 1,
                rng.below(7) + 1,
                rng.below(4) + 1
            )
        };
        let n_conditions = 1 + rng.below(3) as usize;
        let mut notes: Vec<&str> = Vec::new();
        let mut meds: Vec<&str> = Vec::new();
        for _ in 0..n_conditions {
            let c = *rng.pick(CONDITIONS);
            if !notes.contains(&c) {
                notes.push(c);
            }
            let m = *rng.pick(MEDICATIONS);
            if !meds.contains(&m) {
                meds.push(m);
            }
        }
        let mut contacts = Vec::new();
        if living != "three_no" {
            let child = if rng.chance(0.5) { "儿子" } else { "女儿" };
            let far = living != "with_family" && rng.chance(0.7);
            contacts.push(ContactRec {
                name: format!("{surname}{}", rng.pick(YOUNG_GIVEN)),
                relation: if far {
                    format!("{child}（在{}）", rng.pick(FAR_CITIES))
                } else {
                    child.to_string()
                },
                phone: mobile(&mut rng),
                key_holder: !far,
            });
        }
        contacts.push(ContactRec {
            name: person(&mut rng, YOUNG_GIVEN),
            relation: "邻居".into(),
            phone: mobile(&mut rng),
            key_holder: rng.chance(0.6),
        });
        let reference = format!("E{:05}", i + 1);
        // The import takes name and address as an elder's identity: two elders of the same name
        // drawn at the same door get a sub-number ("12号之2"), and nothing else changes.
        let door = address;
        let mut address = door.clone();
        let mut sub = 1;
        while !homes.insert((name.clone(), address.clone())) {
            sub += 1;
            address = format!("{door}之{sub}");
        }
        out_elders.push(ElderRec {
            reference: reference.clone(),
            name,
            phone: rng.chance(0.6).then(|| landline(&mut rng)),
            address,
            lat: round6(jitter(&mut rng, grid.lat, GRID_HALF)),
            lon: round6(jitter(&mut rng, grid.lon, GRID_HALF)),
            grid: Some(grid.code.clone()),
            living: living.into(),
            health_notes: notes.join("；"),
            medications: meds.join("、"),
            contacts,
            key_safe_code: rng.chance(0.6).then(|| format!("{:04}", rng.below(10_000))),
            checkin_hours: if living == "with_family" { 48 } else { 24 },
        });

        let roll = rng.unit();
        let device = if roll < 0.80 {
            DeviceRec {
                protocol: "native".into(),
                // 8601 + 11 digits, unique per index so that no two elders share an id.
                ident: (860_100_000_000_000u64 + (i as u64) * 1_000 + rng.below(1_000)).to_string(),
                secret_hex: Some(hex_bytes(&mut rng, 32)),
                model: (*rng.pick(&["OK-P1 一键通挂件", "OK-W2 墙装呼叫器"])).into(),
                elder: Some(reference.clone()),
                heartbeat_s: 300,
            }
        } else if roll < 0.88 {
            DeviceRec {
                protocol: "gt06".into(),
                ident: imei(&mut rng),
                secret_hex: None,
                model: "GT06N 定位器".into(),
                elder: Some(reference.clone()),
                heartbeat_s: 180,
            }
        } else if roll < 0.94 {
            DeviceRec {
                protocol: "watch".into(),
                ident: format!("{:010}", 3_000_000_000u64 + (i as u64) * 10 + rng.below(10)),
                secret_hex: None,
                model: "3G 老人定位手表".into(),
                elder: Some(reference.clone()),
                heartbeat_s: 300,
            }
        } else if roll < 0.97 {
            DeviceRec {
                protocol: "h02".into(),
                ident: format!("{:010}", 4_100_000_000u64 + (i as u64) * 10 + rng.below(10)),
                secret_hex: None,
                model: "H02 定位胸卡".into(),
                elder: Some(reference.clone()),
                heartbeat_s: 300,
            }
        } else {
            DeviceRec {
                protocol: "sia".into(),
                ident: format!("{:X}", 0x1000 + i),
                secret_hex: Some(hex_bytes(&mut rng, 16)),
                model: "家用报警主机（烟感、燃气）".into(),
                elder: Some(reference.clone()),
                heartbeat_s: 600,
            }
        };
        devices.push(device);
    }

    Dataset {
        format: FORMAT.into(),
        seed,
        areas,
        responders: out_responders,
        elders: out_elders,
        devices,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_dataset_other_seed_other_dataset() {
        let a = generate(120, 40, 7);
        assert_eq!(a, generate(120, 40, 7));
        assert_ne!(a.elders, generate(120, 40, 8).elders);
    }

    #[test]
    fn no_two_elders_share_a_name_and_an_address() {
        let d = generate_shaped(10_000, 10, 42, Some(20));
        let homes: std::collections::HashSet<(&str, &str)> = d
            .elders
            .iter()
            .map(|e| (e.name.as_str(), e.address.as_str()))
            .collect();
        assert_eq!(homes.len(), d.elders.len());
    }

    #[test]
    fn counts_references_and_places_are_consistent() {
        let d = generate(300, 200, 1);
        assert_eq!(d.elders.len(), 300);
        assert_eq!(d.devices.len(), 300);
        let grids: Vec<&AreaRec> = d.areas.iter().filter(|a| a.level == "grid").collect();
        assert_eq!(grids.len(), 15 * 5);
        assert_eq!(d.responders.len(), 200 + grids.len());
        let codes: std::collections::HashSet<&str> =
            d.areas.iter().map(|a| a.code.as_str()).collect();
        assert_eq!(codes.len(), d.areas.len(), "area codes are unique");
        for a in &d.areas {
            if let Some(p) = &a.parent {
                assert!(codes.contains(p.as_str()), "{} has unknown parent", a.code);
            }
        }
        let refs: std::collections::HashSet<&str> =
            d.responders.iter().map(|r| r.reference.as_str()).collect();
        for g in &grids {
            assert!(refs.contains(g.worker.as_deref().unwrap_or("")));
        }
        for e in &d.elders {
            assert!((27.0..27.2).contains(&e.lat) && (114.9..115.0).contains(&e.lon));
            assert!(codes.contains(e.grid.as_deref().unwrap_or("")));
        }
        let idents: std::collections::HashSet<(&str, &str)> = d
            .devices
            .iter()
            .map(|x| (x.protocol.as_str(), x.ident.as_str()))
            .collect();
        assert_eq!(
            idents.len(),
            d.devices.len(),
            "device identities are unique"
        );
        let natives = d.native_devices();
        assert!(natives.len() > 200, "mostly native: {}", natives.len());
        assert!(d.devices.iter().any(|x| x.protocol == "gt06"));
        assert!(d.elders.iter().any(|e| e.living == "three_no"));
        assert!(d.responders.iter().any(|r| r.kind == "provider"));
        assert!(d.responders.iter().any(|r| r.kind == "nursing_student"));
    }

    #[test]
    fn imeis_pass_the_luhn_check() {
        let mut rng = Rng::new(3);
        for _ in 0..50 {
            let s = imei(&mut rng);
            assert_eq!(s.len(), 15);
            let sum: u32 = s
                .chars()
                .rev()
                .filter_map(|c| c.to_digit(10))
                .enumerate()
                .map(|(i, d)| {
                    if i % 2 == 1 {
                        let x = d * 2;
                        if x > 9 { x - 9 } else { x }
                    } else {
                        d
                    }
                })
                .sum();
            assert_eq!(sum % 10, 0, "{s}");
        }
    }

    #[test]
    fn json_round_trips() {
        let d = generate(10, 5, 2);
        let text = serde_json::to_string(&d).expect("serialize");
        let back: Dataset = serde_json::from_str(&text).expect("parse");
        assert_eq!(d, back);
    }
}
