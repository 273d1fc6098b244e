"""The names, places, products and texts generated customers and events are drawn from
(`rapport.demo.sample`), kept apart from how they are drawn."""

import json


def words(text: str) -> tuple[str, ...]:
    """The space-separated words of `text` (keeps the name lists below compact)."""
    return tuple(text.split())


def quoted(*texts: str) -> tuple[str, ...]:
    """`texts` as JSON string literals, ready to splice into an event line."""
    return tuple(json.dumps(text, ensure_ascii=False) for text in texts)


ZH_FAMILY = words("王 李 张 刘 陈 杨 黄 赵 吴 周 徐 孙 马 朱 胡 郭 何 高 林 罗")
ZH_GIVEN = words("芳 伟 静 敏 强 磊 洋 艳 勇 军 杰 娟 涛 明 超 秀英 丽 华 平 刚 婷 雪 鑫")
ZH_GIVEN += words("浩 宇 晨 欣 子涵 一鸣")
ZH_CITIES = words("上海 杭州 北京 深圳 广州 成都 苏州 南京")
ZH_FIRMS = (
    words("Hangzhou Shanghai Shenzhen Suzhou Chengdu Ningbo"),
    words("Lianxin Huamei Jinding Xinda Ruifeng Boyuan"),
    ("Trading Co.", "Coffee Co., Ltd.", "Catering Management Co.", "Hotel Co., Ltd."),
)
EN_FIRST = words("Emma Olivia Amelia Isla Grace Sophie Chloe Mia Jack Oliver Harry Noah Liam")
EN_LAST = words("Clark Smith Jones Taylor Brown Wilson Evans Walker Wright Hughes Lee Tan Patel")
EN_FIRMS = (
    words("Northwind Bluebird Harbour Redwood Summit Lakeside Copperleaf"),
    ("Ltd", "Hospitality Group", "Coffee Co.", "Holdings"),
)
# English-speaking customers: timezone, cities, phone template ('#' is a random digit).
EN_ZONES = (
    ("Europe/London", ("London", "Manchester", "Bristol"), "+44 7700 9#####"),
    ("America/New_York", ("New York", "Boston"), "+1 212-555-01##"),
    ("Asia/Singapore", ("Singapore",), "+65 9### ####"),
    ("Australia/Sydney", ("Sydney", "Canberra"), "+61 4## ### ###"),
)
MANAGERS = {"zh-CN": ("li.na", "zhou.min", "chen.jie"), "en": ("sarah.k", "tom.w")}
PRODUCTS = (  # (name, unit price in CNY), cheapest first
    ("descaler", 68), ("cleaning-tablets", 88), ("coffee-beans", 128), ("water-filter", 160),
    ("tamper", 220), ("cups-set", 320), ("milk-frother", 890), ("service-plan", 1_200),
    ("grinder", 2_400), ("espresso-machine", 6_800),
)  # fmt: skip
# Channels repeated to weight them; English speakers rarely use WeChat.
CHANNELS = {
    "zh-CN": ("wechat",) * 4 + ("phone", "phone", "sms", "app", "email", "visit"),
    "en": ("email",) * 4 + ("phone", "phone", "app", "sms", "visit"),
}
CONTACT_TEXT = {
    "zh-CN": quoted("电话确认送货时间", "微信发送保养提醒", "回访新机使用情况", "介绍会员活动"),
    "en": quoted("Confirmed delivery window", "Sent maintenance reminder",
                  "Follow-up on new machine", "Introduced loyalty offer"),
}  # fmt: skip
CATEGORIES = words("inquiry inquiry inquiry inquiry praise praise complaint complaint")
ISSUES = words("complaint product_fault delivery")  # the categories that can be serious
CATEGORIES += ISSUES + words("delivery")
FEEDBACK_TEXT = {
    "zh-CN": {
        "inquiry": quoted("请问磨豆机的刀盘可以单独购买吗？", "企业采购有没有折扣？"),
        "complaint": quoted("客服回复太慢了，等了两天。", "发票一直没有开出来。"),
        "product_fault": quoted("咖啡机开机后一直报警，无法出水。", "奶泡机加热不稳定。"),
        "praise": quoted("咖啡豆很新鲜，下次还会再买。", "安装师傅很专业，点赞！"),
        "delivery": quoted("快递比预计晚了三天。", "收到的包装有破损。"),
    },
    "en": {
        "inquiry": quoted("Can I buy grinder burrs separately?", "Do you offer volume discounts?"),
        "complaint": quoted("Support took two days to reply.", "My invoice never arrived."),
        "product_fault": quoted("The machine beeps, no water comes out.", "Frother won't heat."),
        "praise": quoted("Fresh beans, will order again.", "The technician was very helpful."),
        "delivery": quoted("The parcel arrived three days late.", "The box was damaged."),
    },
}
RESOLVED_TEXT = {
    "zh-CN": quoted("已回电，问题解决。", "已补发，客户确认收到。", "已上门检修，恢复正常。"),
    "en": quoted("Called back, issue resolved.", "Replacement shipped.", "Repaired on site."),
}
RESPONSE_TEXT = {
    "zh-CN": quoted("您好，已收到您的反馈，我们正在处理。", "已致电了解情况，会尽快给您答复。"),
    "en": quoted("Thanks, we are looking into it.", "Called to understand the issue."),
}
