fn main() {
    yew::Renderer::<qmp_web::App>::new().render();
}
