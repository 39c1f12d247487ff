from embeddings.tokenizer import Tokenizer, get_tokenizer


def test_domain_terms_survive_whole():
    tok = get_tokenizer()
    text = "本发明公开了一种三元正极材料，用于固态电池，与碳化硅器件和工业互联网平台结合。"
    tokens = tok.tokenize(text)
    for term in ("三元正极材料", "固态电池", "碳化硅", "工业互联网"):
        assert term in tokens, (term, tokens)


def test_boilerplate_of_both_sides_is_removed():
    tok = get_tokenizer()
    tokens = tok.tokenize("本发明公开了一种方法。需求内容：电池产量不足；预期目标：成本下降。")
    for word in ("本发明", "公开了", "一种", "需求内容", "预期目标"):
        assert word not in tokens
    assert {"电池", "产量", "成本"} <= set(tokens), tokens


def test_deterministic_and_initialised_once():
    assert get_tokenizer() is get_tokenizer()
    text = "基于深度学习的工业零件表面缺陷检测系统"
    assert Tokenizer().tokenize(text) == get_tokenizer().tokenize(text)


def test_key_terms_are_content_words():
    terms = get_tokenizer().key_terms("需求内容：提高锂离子电池三元正极材料的循环寿命；预期目标：循环寿命提升", 5)
    assert "三元正极材料" in terms
    assert "需求内容" not in terms and "预期目标" not in terms
