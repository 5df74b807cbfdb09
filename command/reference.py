"""Reference data every deployment has: the four field teams plus police, and the categories."""

from __future__ import annotations

TEAMS: list[dict[str, object]] = [
    {"code": "security_fire", "name_zh": "治安消防巡查队", "name_en": "Security & fire patrol", "is_field_team": True},
    {"code": "road", "name_zh": "道路巡查队", "name_en": "Road inspection", "is_field_team": True},
    {"code": "volunteer", "name_zh": "志愿服务队", "name_en": "Volunteer service", "is_field_team": True},
    {"code": "sanitation", "name_zh": "环境卫生队", "name_en": "Sanitation", "is_field_team": True},
    {"code": "police", "name_zh": "派出所", "name_en": "Police station", "is_field_team": False},
]

# code, zh, en, default team, priority (1 = most urgent), SLA minutes, icon
CATEGORIES: list[tuple[str, str, str, str, int, int, str]] = [
    ("emergency_call", "紧急呼救", "Emergency call", "security_fire", 1, 10, "sos"),
    ("gas_alarm", "燃气报警", "Gas alarm", "security_fire", 1, 15, "gas"),
    ("fire_hazard", "消防隐患", "Fire hazard", "security_fire", 1, 30, "fire"),
    ("traffic_accident", "交通事故", "Traffic accident", "road", 1, 20, "car-crash"),
    ("falling_object", "高空坠物", "Falling object", "security_fire", 2, 30, "falling"),
    ("elevator_fault", "电梯故障", "Elevator fault", "volunteer", 2, 60, "elevator"),
    ("neighbour_dispute", "邻里纠纷", "Neighbour dispute", "volunteer", 3, 240, "dispute"),
    ("parking_dispute", "停车纠纷", "Parking dispute", "road", 3, 120, "parking"),
    ("road_damage", "道路破损", "Road damage", "road", 3, 1440, "road"),
    ("sanitation", "环境卫生", "Sanitation", "sanitation", 4, 720, "broom"),
    ("other", "其他", "Other", "volunteer", 4, 1440, "other"),
]
